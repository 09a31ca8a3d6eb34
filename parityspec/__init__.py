"""parityspec: prove that a converted model still predicts what the original predicts."""

__version__ = "0.1.0"
