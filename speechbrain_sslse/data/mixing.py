"""Mixing: the signal-level primitives and the on-the-fly training mixer, under one import path.

This module is where the rest of the project, the recipes' yamls
(``!new:speechbrain_sslse.data.mixing.OnTheFlyMixer``,
``!new:speechbrain_sslse.data.mixing.ChannelAugment``) and packaged models' training
hyperparameters name these objects; they are defined in

- :mod:`speechbrain_sslse.data.signals`: :func:`power`, :func:`level_dbfs`, :func:`snr_db`,
  :func:`loop_to_length`, :func:`mix_at_snr`, :func:`reverberate`, :func:`set_level`
  (single ``[T]`` waveforms);
- :mod:`speechbrain_sslse.data.channel`: :class:`ChannelAugment` (recording-channel effects);
- :mod:`speechbrain_sslse.data.onthefly`: :class:`OnTheFlyMixer` (training mixtures).

Example
-------
>>> from speechbrain_sslse.data import onthefly, signals
>>> OnTheFlyMixer is onthefly.OnTheFlyMixer and mix_at_snr is signals.mix_at_snr
True
"""

from .channel import ChannelAugment
from .onthefly import OnTheFlyMixer
from .signals import EPS, level_dbfs, loop_to_length, mix_at_snr, power, reverberate, set_level, snr_db

__all__ = [
    "EPS",
    "ChannelAugment",
    "OnTheFlyMixer",
    "level_dbfs",
    "loop_to_length",
    "mix_at_snr",
    "power",
    "reverberate",
    "set_level",
    "snr_db",
]
