"""An offline listening page: result tables, plots, and audio players with spectrograms.

:func:`write_listening_page` writes ``index.html`` into a folder together with every
file it shows: the plots are copied, each sample's recordings are written as 16 kHz
WAV beside a spectrogram PNG (one colour scale per sample, so the systems compare at a
glance). Every link is relative and nothing is fetched from elsewhere, so the folder can
be zipped, moved or opened from a laptop as it is. A short script in the page checks
that every image and recording loads and says so at the bottom of the page (element
``#load-status``, attributes ``data-ok``, ``data-images``, ``data-audio``, ``data-failed``).

Tables come as the markdown that :mod:`speechbrain_sslse.metrics.report` writes and are
converted by :func:`markdown_to_html` (the subset that module produces: headings, pipe
tables, bullet lists, paragraphs, inline code, emphasis).
"""

import html
import re
import shutil
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE, AudioError, atomic_path, read_audio, write_audio

__all__ = ["markdown_to_html", "spectrogram_png", "write_listening_page"]

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 1400px; margin: 0 auto; padding: 0 16px 40px; }
h1 { font-size: 1.6em; margin: 0.8em 0 0.3em; }
h2 { font-size: 1.3em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
h3 { font-size: 1.1em; margin: 1.2em 0 0.4em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f2f2; }
tr:nth-child(even) td { background: #fafafa; }
ul.notes { font-size: 0.85em; color: #444; }
code { font-size: 0.95em; background: #f4f4f4; padding: 0 2px; }
img.plot { max-width: 100%; height: auto; border: 1px solid #eee; }
.sample { margin: 0.8em 0 1.4em; }
.sample h4 { margin: 0 0 0.3em; font-size: 1em; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 10px; }
figure { margin: 0; padding: 6px; border: 1px solid #ddd; border-radius: 4px; background: #fcfcfc; }
figcaption { font-weight: 600; font-size: 0.9em; margin-bottom: 3px; overflow-wrap: anywhere; }
figure img { width: 100%; height: auto; display: block; }
figure audio { width: 100%; margin-top: 4px; }
.missing { color: #a00; font-size: 0.85em; }
#load-status { margin-top: 2em; font-size: 0.85em; color: #555; }
#load-status[data-ok="false"] { color: #a00; font-weight: 600; }
"""

CHECK_SCRIPT = """
(function () {
  function settle(el, okEvent, isReady) {
    return new Promise(function (resolve) {
      if (isReady(el)) { resolve(true); return; }
      if (el.error) { resolve(false); return; }
      var timer = setTimeout(function () { resolve(isReady(el)); }, 15000);
      el.addEventListener(okEvent, function () { clearTimeout(timer); resolve(true); }, { once: true });
      el.addEventListener("error", function () { clearTimeout(timer); resolve(false); }, { once: true });
    });
  }
  window.addEventListener("load", function () {
    var imgs = Array.from(document.images);
    var audios = Array.from(document.querySelectorAll("audio"));
    var checks = imgs.map(function (img) {
      return settle(img, "load", function (e) { return e.complete && e.naturalWidth > 0; });
    }).concat(audios.map(function (a) {
      return settle(a, "loadedmetadata", function (e) { return e.readyState >= 1 && !e.error; });
    }));
    Promise.all(checks).then(function (ok) {
      var els = imgs.concat(audios), failed = [];
      ok.forEach(function (good, i) { if (!good) failed.push(els[i].getAttribute("src")); });
      var status = document.getElementById("load-status");
      status.dataset.ok = failed.length ? "false" : "true";
      status.dataset.images = String(imgs.length);
      status.dataset.audio = String(audios.length);
      status.dataset.failed = failed.join(" ");
      status.textContent = failed.length
        ? failed.length + " file(s) of this page could not be loaded: " + failed.join(", ")
        : "All " + imgs.length + " images and " + audios.length + " recordings of this page loaded.";
    });
  });
})();
"""


def _inline(text):
    """Escapes text and renders inline ``code``, **bold** and *emphasis*."""
    out = []
    for i, part in enumerate(re.split(r"`([^`]*)`", text)):
        if i % 2:
            out.append(f"<code>{html.escape(part)}</code>")
        else:
            part = html.escape(part)
            part = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", part)
            part = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", part)
            out.append(part)
    return "".join(out)


def markdown_to_html(text, heading_offset=0):
    """Converts the markdown written by :mod:`speechbrain_sslse.metrics.report` to HTML.

    Arguments
    ---------
    text : str
        Markdown: ``#`` headings, pipe tables (the second line is the ``|---|`` rule),
        ``- `` bullet lists, paragraphs, inline code and emphasis.
    heading_offset : int
        Added to every heading level (``1``: ``#`` becomes ``<h2>``).

    Returns
    -------
    str
        HTML; tables are wrapped in a horizontally scrolling ``div``.

    Example
    -------
    >>> print(markdown_to_html("| system | STOI |\\n|---|---|\\n| a | 0.861 ± 0.012 |\\n\\n- note `x`"))
    <div class="scroll"><table>
    <tr><th>system</th><th>STOI</th></tr>
    <tr><td>a</td><td>0.861 ± 0.012</td></tr>
    </table></div>
    <ul class="notes">
    <li>note <code>x</code></li>
    </ul>
    """
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        if not line.strip():
            i += 1
        elif line.startswith("#"):
            level = min(6, len(line) - len(line.lstrip("#")) + heading_offset)
            blocks.append(f"<h{level}>{_inline(line.lstrip('#').strip())}</h{level}>")
            i += 1
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            body = [r for r in rows[1:] if not all(re.fullmatch(r":?-+:?", c) for c in r)]
            out = ["<tr>" + "".join(f"<th>{_inline(c)}</th>" for c in rows[0]) + "</tr>"]
            out += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body]
            blocks.append('<div class="scroll"><table>\n' + "\n".join(out) + "\n</table></div>")
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:].strip())}</li>")
                i += 1
            blocks.append('<ul class="notes">\n' + "\n".join(items) + "\n</ul>")
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("#", "|", "- ")):
                para.append(lines[i].strip())
                i += 1
            blocks.append(f"<p>{_inline(' '.join(para))}</p>")
    return "\n".join(blocks)


def _log_spectrogram(wav, n_fft=512, hop=128):
    """Magnitude spectrogram in dB, shape ``[F, frames]`` (Hann window)."""
    x = np.asarray(wav, dtype=np.float64)
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    frames = 1 + (x.size - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(n_fft), axis=1)).T
    return 20.0 * np.log10(spec + 1e-8)


def spectrogram_png(wav, path, vmax_db=None, dynamic_range_db=80.0, sample_rate=SAMPLE_RATE):
    """Writes a small spectrogram image (about 300 x 150 px) of a waveform.

    Arguments
    ---------
    wav : array_like or torch.Tensor
        Waveform, shape ``[T]``.
    path : str or Path
        PNG file (written atomically).
    vmax_db : float or None
        Top of the colour scale in dB (default: the loudest bin); give the same value
        to images that are compared.
    dynamic_range_db : float
        Range of the colour scale below ``vmax_db``.
    sample_rate : int
        Sample rate of ``wav``.

    Returns
    -------
    float
        The loudest bin in dB (for a shared ``vmax_db``).

    Example
    -------
    >>> import tempfile, os
    >>> t = np.arange(8000) / 16000
    >>> p = os.path.join(tempfile.mkdtemp(), "s.png")
    >>> top = spectrogram_png(np.sin(2 * np.pi * 440 * t), p)
    >>> open(p, "rb").read(4) == b"\\x89PNG" and top > 0
    True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.asarray(wav.numpy() if hasattr(wav, "numpy") else wav, dtype=np.float64).ravel()
    spec = _log_spectrogram(x)
    top = float(spec.max())
    vmax = top if vmax_db is None else float(vmax_db)
    fig, ax = plt.subplots(figsize=(3.0, 1.5), dpi=100)
    duration = max(x.size, 1) / sample_rate
    ax.imshow(
        spec, origin="lower", aspect="auto", cmap="magma", vmin=vmax - dynamic_range_db, vmax=vmax,
        extent=(0.0, duration, 0.0, sample_rate / 2000.0), interpolation="nearest",
    )  # fmt: skip
    ax.tick_params(labelsize=6, length=2, pad=1)
    ax.set_xlabel("s", fontsize=6, labelpad=0)
    ax.set_ylabel("kHz", fontsize=6, labelpad=1)
    fig.subplots_adjust(left=0.11, right=0.99, bottom=0.17, top=0.98)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return top


def _safe(name):
    """A file-name-safe version of a system or file id."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._") or "x"


def _blocks(blocks, report_dir):
    """HTML of markdown (``str``) and image (``Path``, copied into ``report_dir``) blocks."""
    parts = []
    for block in blocks:
        if isinstance(block, str):
            parts.append(markdown_to_html(block, heading_offset=1))
        elif Path(block).is_file():
            shutil.copyfile(block, report_dir / Path(block).name)
            src = html.escape(Path(block).name)
            parts.append(f'<p><img class="plot" src="{src}" alt="{src}"></p>')
    return parts


def write_listening_page(
    report_dir, samples, systems, blocks=(), title="Listening page", intro="", appendix=()
):
    """Writes ``index.html`` and the files it shows into ``report_dir``.

    Arguments
    ---------
    report_dir : str or Path
        Output folder (created). Its ``samples/`` subfolder is rewritten.
    samples : list of dict
        One dict per sample, in display order: ``id``, ``group`` (section heading, e.g.
        ``"SNR 5 dB"``), optional ``caption`` (text beside the id) and ``audio``
        (``{system: path or None}``, any audio file; resampled to 16 kHz mono).
    systems : list of str
        Systems shown for each sample, in order (left to right).
    blocks : list of str or Path
        What comes above the samples, in order: a ``str`` is markdown (tables and notes,
        see :func:`markdown_to_html`), a ``Path`` an image, copied into ``report_dir``.
    title : str
        Page title.
    intro : str
        A line of text under the title.
    appendix : list of str or Path
        Like ``blocks``, shown after the samples (e.g. long tables).

    Returns
    -------
    Path
        The written ``index.html``.

    Example
    -------
    >>> import tempfile, os
    >>> from speechbrain_sslse.audio import write_audio
    >>> d = Path(tempfile.mkdtemp())
    >>> noisy = d / "n.wav"
    >>> write_audio(noisy, 0.1 * np.sin(np.arange(8000) / 5.0), 16000)
    >>> page = write_listening_page(d / "report", [{"id": "u1", "group": "SNR 0 dB",
    ...     "audio": {"distorted": noisy, "clean": noisy, "mine": None}}], ["distorted", "mine", "clean"],
    ...     blocks=["| system | STOI |\\n|---|---|\\n| mine | 0.9 |"])
    >>> sorted(p.name for p in (d / "report" / "samples" / "u1").iterdir())
    ['clean.png', 'clean.wav', 'distorted.png', 'distorted.wav']
    >>> text = page.read_text()
    >>> text.count("<audio"), "src=\\"samples/u1/clean.wav\\"" in text, "no file" in text
    (2, True, True)
    """
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    sample_root = report_dir / "samples"
    if sample_root.is_dir():
        shutil.rmtree(sample_root)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if intro:
        parts.append(f"<p>{_inline(intro)}</p>")
    parts += _blocks(blocks, report_dir)
    if samples:
        parts.append("<h2>Samples</h2>")
        parts.append(
            "<p>Each row: the unprocessed input, every system and the clean reference, on the same "
            "file. The spectrograms of a row share one colour scale (80 dB range).</p>"
        )
    group = None
    for sample in samples:
        if sample.get("group") != group:
            group = sample.get("group")
            parts.append(f"<h3>{html.escape(str(group))}</h3>")
        sid = _safe(sample["id"])
        folder = sample_root / sid
        folder.mkdir(parents=True, exist_ok=True)
        waves, unreadable = {}, {}
        for system in systems:
            path = sample["audio"].get(system)
            if path is not None and Path(path).is_file():
                try:
                    waves[system] = read_audio(path).numpy()
                except AudioError as err:  # shown on the page, as the tables report it
                    unreadable[system] = str(err)
        top = max((float(_log_spectrogram(w).max()) for w in waves.values()), default=None)
        caption = f" <small>{html.escape(sample['caption'])}</small>" if sample.get("caption") else ""
        heading = f"<h4>{html.escape(str(sample['id']))}{caption}</h4>"
        parts.append(f'<div class="sample">{heading}<div class="grid">')
        for system in systems:
            label = html.escape(system)
            if system not in waves:
                why = f"unreadable: {unreadable[system]}" if system in unreadable else "no file"
                parts.append(f"<figure><figcaption>{label}</figcaption>")
                parts.append(f'<p class="missing">{html.escape(why)}</p></figure>')
                continue
            name = _safe(system)
            write_audio(folder / f"{name}.wav", waves[system], SAMPLE_RATE)
            spectrogram_png(waves[system], folder / f"{name}.png", vmax_db=top)
            rel = f"samples/{sid}/{name}"
            parts.append(
                f"<figure><figcaption>{label}</figcaption>"
                f'<img src="{html.escape(rel)}.png" alt="spectrogram of {label}" width="300" height="150">'
                f'<audio controls preload="metadata" src="{html.escape(rel)}.wav"></audio></figure>'
            )
        parts.append("</div></div>")
    parts += _blocks(appendix, report_dir)
    parts.append('<p id="load-status" data-ok="">Checking that every file of this page loads...</p>')
    parts.append(f"<script>{CHECK_SCRIPT}</script>")
    parts.append("</body></html>")
    page = report_dir / "index.html"
    with atomic_path(page) as tmp:
        Path(tmp).write_text("\n".join(parts) + "\n", encoding="utf-8")
    return page
