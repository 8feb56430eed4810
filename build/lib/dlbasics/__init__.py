"""dlbasics: the basics of deep learning, trained for real with Lightning and Hydra."""

__version__ = "0.1.0"
