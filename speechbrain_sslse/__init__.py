"""speechbrain-sslse: generative speech enhancement with self-supervised speech models.

A SpeechBrain plugin implementing the spectrum-aware denoising vocoder
(Song, Kim, Kang, Madhu, EUSIPCO 2024) and the SSL robustness/information probes
(Song, Kim, Madhu, Kang, ICEIC 2024).
"""

__version__ = "0.1.0"
