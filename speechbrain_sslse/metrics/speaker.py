"""Speaker cosine similarity between enhanced and clean speech.

Two embedding backends:

- ``ecapa`` (the paper's metric): SpeechBrain's ``EncoderClassifier`` loaded from a
  local model folder in the format of ``speechbrain/spkrec-ecapa-voxceleb``
  (``hyperparams.yaml`` + checkpoints). Loading never touches the network
  (``FetchConfig(allow_network=False)``); the folder's ``pretrained_path`` is
  pointed at the folder itself, so a copied model card works as it is.
- ``ge2e``: Resemblyzer's GE2E ``VoiceEncoder`` with the pretrained weights shipped
  inside the ``resemblyzer`` wheel (speech trimmed by its WebRTC VAD first, as
  Resemblyzer's ``preprocess_wav`` does). Usable when no ECAPA weights are at hand.
"""

import re
from pathlib import Path

import numpy as np
import torch

from ..audio import SAMPLE_RATE
from .base import MetricUnavailable, as_waveform


def cosine(a, b):
    """Cosine similarity of two embeddings ``[D]``.

    Example
    -------
    >>> round(cosine(np.array([1.0, 0.0]), np.array([1.0, 1.0])), 4)
    0.7071
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    den = np.linalg.norm(a) * np.linalg.norm(b)
    if den == 0.0:
        raise MetricUnavailable("speaker similarity: an embedding is all zeros")
    return float(np.dot(a, b) / den)


def parse_speaker_model(spec):
    """Parses ``"ge2e"``, ``"ecapa:DIR"`` (or ``"ecapa"`` + no folder) into ``(backend, source)``.

    Example
    -------
    >>> parse_speaker_model("ecapa:/models/ecapa")
    ('ecapa', '/models/ecapa')
    >>> parse_speaker_model("ge2e")
    ('ge2e', None)
    """
    backend, _, source = str(spec).partition(":")
    backend = backend.strip().lower()
    if backend not in ("ecapa", "ge2e"):
        raise ValueError(f"speaker model {spec!r}: use 'ge2e' or 'ecapa:/path/to/model_folder'")
    return backend, (source or None)


class SpeakerSimilarity:
    """Cosine similarity of speaker embeddings of two utterances.

    Arguments
    ---------
    backend : str
        ``"ecapa"`` (SpeechBrain ECAPA-TDNN from a local folder) or ``"ge2e"``
        (Resemblyzer's bundled encoder).
    source : str or Path or None
        ECAPA model folder (``hyperparams.yaml`` and checkpoints); unused for ``ge2e``.
    savedir : str or Path or None
        Where SpeechBrain links the model files; the model folder itself by default.
    device : str
        Torch device.

    Raises
    ------
    MetricUnavailable
        When the model folder or a package is missing (the message says which).

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_sslse.metrics.ecapa_folder import write_ecapa_folder
    >>> folder = write_ecapa_folder(tempfile.mkdtemp() + "/ecapa", channels=16, lin_neurons=8)
    >>> sim = SpeakerSimilarity("ecapa", folder)
    >>> x = torch.randn(16000, generator=torch.Generator().manual_seed(0))
    >>> sim.embed(x).shape
    (8,)
    >>> round(sim(x, x)["spk_cs"], 4)
    1.0
    """

    COLUMNS = ("spk_cs",)

    def __init__(self, backend="ge2e", source=None, savedir=None, device="cpu"):
        self.backend = backend
        self.device = device
        if backend == "ecapa":
            self.source = self._check_folder(source)
            self.model = self._load_ecapa(self.source, savedir, device)
        elif backend == "ge2e":
            self.source = None
            self.model = self._load_ge2e(device)
        else:
            raise ValueError(f"unknown speaker backend {backend!r}: use 'ecapa' or 'ge2e'")

    @staticmethod
    def _check_folder(source):
        if source is None:
            raise MetricUnavailable(
                "speaker similarity (ecapa): no model folder given; pass --speaker_model ecapa:DIR "
                "with a local copy of speechbrain/spkrec-ecapa-voxceleb, or use ge2e"
            )
        folder = Path(source).expanduser()
        if not (folder / "hyperparams.yaml").is_file():
            raise MetricUnavailable(
                f"speaker similarity (ecapa): {folder} is not a SpeechBrain model folder "
                "(no hyperparams.yaml); pass a local copy of speechbrain/spkrec-ecapa-voxceleb"
            )
        return folder.resolve()

    @staticmethod
    def _load_ecapa(folder, savedir, device):
        from speechbrain.inference.classifiers import EncoderClassifier
        from speechbrain.utils.fetching import FetchConfig

        text = (folder / "hyperparams.yaml").read_text()
        overrides = {}
        if re.search(r"^pretrained_path\s*:", text, flags=re.M):
            overrides["pretrained_path"] = str(folder)
        try:
            return EncoderClassifier.from_hparams(
                source=str(folder),
                savedir=str(savedir or folder),
                overrides=overrides,
                fetch_config=FetchConfig(allow_network=False),
                run_opts={"device": device},
            )
        except (OSError, ValueError, KeyError) as err:
            raise MetricUnavailable(
                f"speaker similarity (ecapa): cannot load the model in {folder} ({type(err).__name__}: {err})"
            ) from err

    @staticmethod
    def _load_ge2e(device):
        try:
            from resemblyzer import VoiceEncoder
        except ImportError as err:
            raise MetricUnavailable(
                f"speaker similarity (ge2e): `resemblyzer` cannot be imported ({err}); install "
                "webrtcvad-wheels and `pip install --no-deps resemblyzer==0.1.4` (scripts/setup_venv.sh)"
            ) from err
        return VoiceEncoder(device=device, verbose=False)

    @property
    def info(self):
        """Backend and model location, for reports.

        Example
        -------
        >>> SpeakerSimilarity("ge2e").info["backend"]
        'ge2e'
        """
        if self.backend == "ecapa":
            return {"backend": "ecapa", "model": "speechbrain EncoderClassifier", "source": str(self.source)}
        return {"backend": "ge2e", "model": "resemblyzer VoiceEncoder (bundled pretrained.pt)"}

    @torch.no_grad()
    def embed(self, wav):
        """Speaker embedding of one utterance.

        Arguments
        ---------
        wav : torch.Tensor, numpy.ndarray or path
            ``[T]`` speech at 16 kHz (a file is read and resampled).

        Returns
        -------
        numpy.ndarray
            ``[D]`` embedding (192 for the published ECAPA, 256 for GE2E).
        """
        audio = as_waveform(wav)
        if self.backend == "ecapa":
            emb = self.model.encode_batch(torch.from_numpy(audio)[None, :])
            return emb.reshape(-1).cpu().double().numpy()
        from resemblyzer import preprocess_wav

        speech = preprocess_wav(audio, source_sr=SAMPLE_RATE)
        if speech.size < SAMPLE_RATE // 10:
            raise MetricUnavailable("speaker similarity (ge2e): less than 0.1 s of speech after VAD")
        return np.asarray(self.model.embed_utterance(speech), dtype=np.float64)

    def __call__(self, estimate, reference, reference_embedding=None):
        """Speaker cosine similarity of ``estimate`` to ``reference``.

        Arguments
        ---------
        estimate, reference : torch.Tensor, numpy.ndarray or path
            ``[T]`` utterances at 16 kHz.
        reference_embedding : numpy.ndarray or None
            ``[D]`` embedding of ``reference`` when already computed (it is then not read).

        Returns
        -------
        dict
            ``spk_cs`` in [-1, 1].
        """
        ref = reference_embedding if reference_embedding is not None else self.embed(reference)
        return {"spk_cs": cosine(self.embed(estimate), ref)}
