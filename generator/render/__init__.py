"""Renderers: Markdown and LaTeX through Jinja templates, the PDF through latexmk, the JSON trace.

Each takes the view (``view.py``) or the ``Solution`` and returns text; writing
files is the build's business (``build.py``).
"""
