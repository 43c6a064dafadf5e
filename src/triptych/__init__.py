"""triptych: the classic deep-learning systems for images, video and text."""

__version__ = "0.1.0"
