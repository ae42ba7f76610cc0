"""SpeechBrain's checkpointer, made safe against interruption and clear about damaged checkpoints.

SpeechBrain writes a checkpoint folder's ``CKPT.yaml`` (which makes the folder a
checkpoint) *before* the parameter files, and deletes old folders file by file. A
run killed (SIGKILL, out of memory, pre-emption) while saving or deleting can thus
leave a folder that looks complete but lacks files or holds truncated ones, and
the next run fails to resume from it. :class:`AtomicCheckpointer` writes
``CKPT.yaml`` last (under a temporary name, renamed at the end), removes it first
when deleting, clears the incomplete folders a killed run left behind, and turns
a checkpoint that cannot be loaded into a :class:`CheckpointError` naming the
folder, the damaged file and the fix.

Authors
 * speechbrain-sslse contributors
"""

import logging
import os
import shutil
import zipfile
from pathlib import Path

import torch
from speechbrain.utils.checkpoints import CKPT_PREFIX, METAFNAME, Checkpointer
from speechbrain.utils.distributed import if_main_process

from .lobes.ssl_encoder import CheckpointError

__all__ = ["AtomicCheckpointer", "CheckpointError", "damaged_files"]

logger = logging.getLogger(__name__)

PENDING_SUFFIX = ".part"


def damaged_files(folder):
    """Parameter files of a checkpoint folder that ``torch.load(weights_only=True)`` cannot read.

    Only files in PyTorch's zip format (and files too short to hold anything) are
    checked; SpeechBrain's text parameter files (``brain.ckpt``, ``counter.ckpt``)
    are not.

    Arguments
    ---------
    folder : str or Path
        A ``CKPT+...`` folder.

    Returns
    -------
    list of Path
        The damaged files, sorted.

    Example
    -------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> torch.save({"w": torch.zeros(1000)}, folder / "model.ckpt")
    >>> damaged_files(folder)
    []
    >>> data = (folder / "model.ckpt").read_bytes()
    >>> _ = (folder / "model.ckpt").write_bytes(data[: len(data) // 2])
    >>> [p.name for p in damaged_files(folder)]
    ['model.ckpt']
    """
    damaged = []
    for path in sorted(Path(folder).glob("*.ckpt")):
        with open(path, "rb") as f:
            head = f.read(4)
        if path.stat().st_size == 0:
            damaged.append(path)
        elif head == b"PK\x03\x04":  # torch.save's zip format
            try:
                if not zipfile.is_zipfile(path):
                    raise ValueError("no zip central directory (truncated)")
                torch.load(path, map_location="cpu", weights_only=True)
            except Exception:  # any failure to read means the file is unusable
                damaged.append(path)
    return damaged


class AtomicCheckpointer(Checkpointer):
    """:class:`speechbrain.utils.checkpoints.Checkpointer` whose checkpoints appear whole or not at all.

    Same arguments and behaviour as SpeechBrain's checkpointer, except that:

    - ``CKPT.yaml`` is written after every parameter file (under a temporary name,
      then renamed), so a folder interrupted while saving is not a checkpoint;
    - deleting a checkpoint removes ``CKPT.yaml`` first;
    - :meth:`recover_if_possible` removes the incomplete ``CKPT+*`` folders left by a
      killed run (main process only);
    - a checkpoint that cannot be loaded raises :class:`CheckpointError` naming the
      folder, the damaged files and the fix.

    Example
    -------
    >>> import tempfile
    >>> model = torch.nn.Linear(2, 2)
    >>> ckpt = AtomicCheckpointer(tempfile.mkdtemp(), recoverables={"model": model})
    >>> saved = ckpt.save_checkpoint()
    >>> sorted(p.name for p in saved.path.iterdir())
    ['CKPT.yaml', 'model.ckpt']
    >>> ckpt.recover_if_possible().path == saved.path
    True
    """

    def _save_checkpoint_metafile(self, fpath, meta_to_include=None, end_of_epoch=True):
        """Writes the meta file under a temporary name; :meth:`save_checkpoint` renames it."""
        fpath = Path(fpath)
        self._pending_meta = fpath
        return super()._save_checkpoint_metafile(
            fpath.with_name(fpath.name + PENDING_SUFFIX), meta_to_include or {}, end_of_epoch
        )

    def save_checkpoint(self, *args, **kwargs):
        """Saves a checkpoint (see SpeechBrain's); ``CKPT.yaml`` appears once every file is written."""
        self._pending_meta = None
        checkpoint = super().save_checkpoint(*args, **kwargs)
        if self._pending_meta is not None:  # main process
            pending = self._pending_meta
            os.replace(pending.with_name(pending.name + PENDING_SUFFIX), pending)
            self._pending_meta = None
        return checkpoint

    @staticmethod
    def _delete_checkpoint(checkpoint, verbosity=logging.INFO):
        """Removes ``CKPT.yaml`` first, so a deletion cut short leaves no checkpoint-looking folder."""
        if not Checkpointer._is_checkpoint_dir(checkpoint.path):
            raise RuntimeError("Checkpoint does not appear valid for deletion.")
        os.unlink(Path(checkpoint.path) / METAFNAME)
        shutil.rmtree(checkpoint.path)
        logger.log(verbosity, f"Deleted checkpoint in {checkpoint.path}")

    def incomplete_folders(self):
        """``CKPT+*`` folders without ``CKPT.yaml``: saves or deletions cut short.

        Returns
        -------
        list of Path
        """
        if not self.checkpoints_dir.is_dir():
            return []
        return sorted(
            p
            for p in self.checkpoints_dir.iterdir()
            if p.is_dir() and p.name.startswith(CKPT_PREFIX) and not (p / METAFNAME).exists()
        )

    def recover_if_possible(self, *args, **kwargs):
        """Removes incomplete folders (main process), then recovers as SpeechBrain does."""
        if if_main_process():
            for folder in self.incomplete_folders():
                logger.warning("removing %s: a checkpoint whose saving was interrupted", folder)
                shutil.rmtree(folder, ignore_errors=True)
        return super().recover_if_possible(*args, **kwargs)

    def load_checkpoint(self, checkpoint):
        """Loads ``checkpoint``; a damaged or mismatched one raises :class:`CheckpointError`."""
        fix = (
            f"Delete {checkpoint.path} to resume from the previous checkpoint, or set another "
            "output_folder to start afresh."
        )
        try:
            super().load_checkpoint(checkpoint)
        except CheckpointError as err:
            message = f"cannot resume from the checkpoint {checkpoint.path}: {err} {fix}"
            raise CheckpointError(message) from err
        except Exception as err:  # torch/pickle/yaml raise many types for damaged files
            damaged = damaged_files(checkpoint.path)
            what = ", ".join(p.name for p in damaged) if damaged else "one of its files"
            raise CheckpointError(
                f"cannot resume from the checkpoint {checkpoint.path}: {what} is damaged or incomplete "
                f"({type(err).__name__}: {err}). {fix}"
            ) from err
