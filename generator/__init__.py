"""stepgen: calculus problems in YAML -> worked, step-by-step solutions (Markdown, LaTeX, PDF, JSON)."""
__version__ = "0.1.0"
