"""Gradio tabs: each module wires widgets to pure functions of the package (no logic here)."""
