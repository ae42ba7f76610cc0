"""Interface of this model folder, for SpeechBrain's ``foreign_class``."""

from speechbrain_sslse.inference import SpectrumAwareEnhancer  # noqa: F401
