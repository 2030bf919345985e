"""hm: a pipeline runner whose runners, hooks and commands are native plugins."""

__version__ = "0.1.0"
