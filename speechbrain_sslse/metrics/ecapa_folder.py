"""Writes a SpeechBrain ECAPA-TDNN speaker-embedding folder in the real model-card format.

The folder has the files of ``speechbrain/spkrec-ecapa-voxceleb``:
``hyperparams.yaml`` (Fbank features, sentence mean normalisation, ``ECAPA_TDNN``
embedding model, ``Classifier``, global embedding normalisation, label encoder and a
``Pretrainer`` listing the files), ``embedding_model.ckpt``, ``classifier.ckpt``,
``mean_var_norm_emb.ckpt`` and ``label_encoder.txt``, each written by the saver
SpeechBrain itself uses for that object. With real weights (a copy of the model
card) nothing else changes; the weights written here are random, from a seed, at
any size: it is how tests and offline users check the whole loading path
(``EncoderClassifier.from_hparams(source=folder, savedir=...)``).
"""

from pathlib import Path

import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.checkpoints import DEFAULT_SAVE_HOOKS, get_default_hook

from ..audio import atomic_path

HPARAMS_TEMPLATE = """\
# ############################################################################
# Model: ECAPA-TDNN speaker embeddings (format of speechbrain/spkrec-ecapa-voxceleb)
# Weights written by speechbrain_sslse.metrics.ecapa_folder ({origin})
# ############################################################################

# Feature parameters
n_mels: {n_mels}

# Pretrain folder (a local folder, or a HuggingFace model id)
pretrained_path: {pretrained_path}

# Output parameters
out_n_neurons: {n_speakers}

# Model params
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>

mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False

embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: {channels}
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: {attention_channels}
    se_channels: {attention_channels}
    lin_neurons: {lin_neurons}

classifier: !new:speechbrain.lobes.models.ECAPA_TDNN.Classifier
    input_size: {lin_neurons}
    out_neurons: !ref <out_n_neurons>

mean_var_norm_emb: !new:speechbrain.processing.features.InputNormalization
    norm_type: global
    std_norm: False

modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    mean_var_norm_emb: !ref <mean_var_norm_emb>
    classifier: !ref <classifier>

label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
        mean_var_norm_emb: !ref <mean_var_norm_emb>
        classifier: !ref <classifier>
        label_encoder: !ref <label_encoder>
    paths:
        embedding_model: !ref <pretrained_path>/embedding_model.ckpt
        mean_var_norm_emb: !ref <pretrained_path>/mean_var_norm_emb.ckpt
        classifier: !ref <pretrained_path>/classifier.ckpt
        label_encoder: !ref <pretrained_path>/label_encoder.txt
"""


def write_ecapa_folder(path, channels=64, lin_neurons=32, n_mels=24, n_speakers=4, seed=0):
    """Writes a randomly initialised ECAPA-TDNN model folder (SpeechBrain's format).

    Arguments
    ---------
    path : str or Path
        Folder to create (files inside are replaced).
    channels : int
        Channels of the four TDNN/SE-Res2Net blocks (a multiple of 8); the last
        layer has ``3 * channels`` (1024 / 3072 in the published model).
    lin_neurons : int
        Embedding size (192 in the published model).
    n_mels : int
        Filterbank channels (80 in the published model).
    n_speakers : int
        Classifier outputs (7205 VoxCeleb speakers in the published model).
    seed : int
        Seed of the random weights.

    Returns
    -------
    Path
        The folder, loadable with
        ``EncoderClassifier.from_hparams(source=folder, savedir=...)``.

    Example
    -------
    >>> import tempfile
    >>> folder = write_ecapa_folder(tempfile.mkdtemp() + "/ecapa", channels=16, lin_neurons=8)
    >>> sorted(p.name for p in folder.iterdir())  # doctest: +NORMALIZE_WHITESPACE
    ['classifier.ckpt', 'embedding_model.ckpt', 'hyperparams.yaml', 'label_encoder.txt',
     'mean_var_norm_emb.ckpt']
    """
    if channels % 8:
        raise ValueError(f"channels must be a multiple of 8 (Res2Net scale), got {channels}")
    folder = Path(path).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    text = HPARAMS_TEMPLATE.format(
        origin=f"random weights, seed {seed}",
        n_mels=n_mels,
        pretrained_path=str(folder),
        n_speakers=n_speakers,
        channels=[channels] * 4 + [3 * channels],
        attention_channels=max(8, channels // 8),
        lin_neurons=lin_neurons,
    )
    torch.manual_seed(seed)
    hparams = load_hyperpyyaml(text)
    # Global embedding statistics, as accumulated at the end of training.
    norm = hparams["mean_var_norm_emb"]
    norm.train()
    with torch.no_grad():
        embeddings = torch.randn(8, 1, lin_neurons, generator=torch.Generator().manual_seed(seed))
        norm(embeddings, torch.ones(8))
    hparams["label_encoder"].update_from_iterable([f"spk{i:04d}" for i in range(n_speakers)])
    for name, target in hparams["pretrainer"].paths.items():
        obj = hparams["pretrainer"].loadables[name]
        saver = get_default_hook(obj, DEFAULT_SAVE_HOOKS)
        if saver is None:
            raise TypeError(f"no SpeechBrain saver for {name} ({type(obj).__name__})")
        with atomic_path(folder / Path(target).name) as tmp:
            saver(obj, tmp)
    with atomic_path(folder / "hyperparams.yaml") as tmp:
        Path(tmp).write_text(text)
    return folder
