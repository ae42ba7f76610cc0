"""Room impulse responses at a target T60: pyroomacoustics shoebox rooms, measured and corrected.

A room's absorption comes from Sabine's formula (``pra.inverse_sabine``), but the
decay the simulator produces differs from Sabine's prediction (by up to ~50 % in
flat rooms). So every RIR is simulated (image sources up to order 3 plus ray
tracing for the tail, fast even at T60 = 1.3 s), written, read back and measured
with :func:`speechbrain_sslse.data.rir.measure_t60` (Schroeder T20); while the
measurement is off the target by more than the tolerance, the Sabine target is
corrected by the ratio target/measured and the room simulated again (a new room
is drawn after a few tries). The T60 recorded is the one measured on the file.

Simulation is made deterministic by seeding pyroomacoustics' random generators
(``pra.random.seed``) and running its RIR builder on one thread.
"""

import contextlib
from dataclasses import asdict, dataclass

import numpy as np
import pyroomacoustics as pra
import soundfile as sf

from ..audio import write_audio
from ..data.rir import direct_path_index, measure_t60, schroeder_curve_db

SPEED_OF_SOUND = 343.0
DIRECT_PEAK = 0.9


@dataclass
class RIRInfo:
    """What was simulated for one RIR file.

    Attributes
    ----------
    target_t60, measured_t60, sabine_t60 : float
        Wanted T60, T60 measured on the written file, T60 given to Sabine's formula (s).
    c50 : float
        Clarity C50 in dB.
    dims, source, mic : list of float
        Room size and positions in metres.
    absorption : float
        Energy absorption coefficient of the walls.
    attempts : int
        Simulations needed.
    sample_rate : int
        Rate of the file.
    """

    target_t60: float
    measured_t60: float
    sabine_t60: float
    c50: float
    dims: list
    source: list
    mic: list
    absorption: float
    attempts: int
    sample_rate: int

    def to_dict(self):
        """Plain dict (rounded) for corpus.json."""
        out = asdict(self)
        for key in ("target_t60", "measured_t60", "sabine_t60", "c50", "absorption"):
            out[key] = round(float(out[key]), 4)
        for key in ("dims", "source", "mic"):
            out[key] = [round(float(v), 3) for v in out[key]]
        return out


def t60_targets(count, rng, low=0.3, high=1.3):
    """``count`` T60 targets spread evenly over ``[low, high]`` (one jittered point per stratum).

    Example
    -------
    >>> t = t60_targets(10, np.random.default_rng(0))
    >>> len(t), bool(min(t) >= 0.3 and max(t) <= 1.3), bool(np.all(np.diff(t) > 0))
    (10, True, True)
    """
    edges = np.linspace(low, high, count + 1)
    return [float(a + (b - a) * rng.uniform(0.1, 0.9)) for a, b in zip(edges[:-1], edges[1:])]


def room_geometry(rng, max_distance=3.0):
    """Draws a shoebox room and a source and microphone inside it.

    Positions keep 0.5 m from the walls; the source-microphone distance lies in
    [1, ``max_distance``] m so that the direct path is the strongest arrival.

    Returns
    -------
    dims, source, mic : list of float

    Example
    -------
    >>> d, s, m = room_geometry(np.random.default_rng(0))
    >>> 1.0 <= float(np.linalg.norm(np.subtract(s, m))) <= 3.0
    True
    """
    while True:
        length = rng.uniform(3.0, 10.0)
        width = rng.uniform(2.5, min(length, 8.0))
        height = rng.uniform(2.4, 4.0)
        dims = [length, width, height]
        for _ in range(50):
            src = [rng.uniform(0.5, length - 0.5), rng.uniform(0.5, width - 0.5), rng.uniform(1.0, 2.0)]
            mic = [rng.uniform(0.5, length - 0.5), rng.uniform(0.5, width - 0.5), rng.uniform(0.8, 1.8)]
            if 1.0 <= np.linalg.norm(np.subtract(src, mic)) <= max_distance:
                return dims, src, mic


@contextlib.contextmanager
def _deterministic_pra(seed):
    old = pra.constants.get("num_threads")
    pra.constants.set("num_threads", 1)
    pra.random.seed(int(seed))
    try:
        yield
    finally:
        pra.constants.set("num_threads", old)


def simulate_rir(dims, source, mic, sabine_t60, sample_rate, seed, n_rays=3000):
    """One RIR of a shoebox room (image sources to order 3 + ray-traced tail).

    Arguments
    ---------
    dims, source, mic : list of float
        Room size and positions (m).
    sabine_t60 : float
        T60 (s) from which the wall absorption is set by Sabine's formula.
    sample_rate : int
        Rate of the RIR.
    seed : int
        Seed of pyroomacoustics' generators.
    n_rays : int
        Rays traced.

    Returns
    -------
    rir : numpy.ndarray
        ``[T]`` float64 impulse response (pyroomacoustics' scale).
    absorption : float
        Wall energy absorption.

    Raises
    ------
    ValueError
        If no absorption in [0, 1] gives ``sabine_t60`` in this room.

    Example
    -------
    >>> h, a = simulate_rir([4, 3.5, 2.6], [1, 1, 1.5], [3, 2.5, 1.2], 0.3, 8000, seed=0, n_rays=500)
    >>> h.ndim, 0 < a < 1
    (1, True)
    """
    absorption, _ = pra.inverse_sabine(sabine_t60, dims)
    with _deterministic_pra(seed):
        room = pra.ShoeBox(
            dims,
            fs=int(sample_rate),
            materials=pra.Material(float(absorption)),
            max_order=3,
            ray_tracing=True,
            air_absorption=False,
        )
        room.set_ray_tracing(receiver_radius=0.5, n_rays=n_rays, energy_thres=1e-6)
        room.add_source(list(source))
        room.add_microphone(list(mic))
        room.compute_rir()
        rir = np.asarray(room.rir[0][0], dtype=np.float64)
    return rir, float(absorption)


def expected_direct_index(source, mic, sample_rate):
    """Sample index of the direct path in a pyroomacoustics RIR (distance/c + filter delay).

    Example
    -------
    >>> expected_direct_index([0, 0, 0], [3.43, 0, 0], 16000)
    200
    """
    delay = pra.constants.get("frac_delay_length") // 2
    return int(round(np.linalg.norm(np.subtract(source, mic)) / SPEED_OF_SOUND * sample_rate)) + delay


def finish_rir(rir, sample_rate, floor_db=-65.0, peak=DIRECT_PEAK):
    """Scales the direct-path peak to ``peak`` and cuts the tail once the decay passes ``floor_db``.

    Example
    -------
    >>> h = np.exp(-np.arange(8000) / 400.0) * np.cos(np.arange(8000))
    >>> out = finish_rir(h, 8000)
    >>> round(float(np.abs(out).max()), 3), len(out) < 8000
    (0.9, True)
    """
    rir = np.asarray(rir, dtype=np.float64)
    rir = rir * (peak / np.abs(rir[direct_path_index(rir)]))
    edc = schroeder_curve_db(rir)
    below = np.nonzero(edc < floor_db)[0]
    if below.size:
        rir = rir[: max(int(below[0]), direct_path_index(rir) + int(0.05 * sample_rate))]
    return rir.astype(np.float32)


def measure_c50(rir, sample_rate):
    """Clarity C50 (dB): energy of the first 50 ms after the direct path over the rest.

    Example
    -------
    >>> h = np.zeros(16000); h[0] = 1.0; h[1600] = 0.1
    >>> round(measure_c50(h, 16000), 1)
    20.0
    """
    h = np.asarray(rir, dtype=np.float64)
    h = h[direct_path_index(h) :]
    n50 = int(round(0.05 * sample_rate))
    early, late = np.sum(h[:n50] ** 2), np.sum(h[n50:] ** 2)
    return float(10.0 * np.log10((early + 1e-20) / (late + 1e-20)))


def make_rir(
    path, target_t60, sample_rate, rng, seed, tolerance=0.15, goal=0.05, max_attempts=8, n_rays=3000
):
    """Simulates an RIR whose T60, measured on the written file, is within ``tolerance`` of the target.

    Rooms are re-simulated (correcting the absorption) until the error is below
    ``goal`` or ``max_attempts`` is reached; the best attempt is kept.

    Arguments
    ---------
    path : str or Path
        Output file (written as 16-bit PCM).
    target_t60 : float
        Wanted T60 (s).
    sample_rate : int
        Rate of the file.
    rng : numpy.random.Generator
        Draws the rooms.
    seed : int
        Base seed for pyroomacoustics.
    tolerance : float
        Largest accepted relative T60 error.
    goal : float
        Relative error at which to stop trying.
    max_attempts : int
        Simulations before giving up.
    n_rays : int
        Rays traced per simulation.

    Returns
    -------
    RIRInfo

    Raises
    ------
    RuntimeError
        If no attempt reaches the tolerance.

    Example
    -------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "rir.wav")
    >>> info = make_rir(p, 0.4, 8000, np.random.default_rng(0), seed=0, n_rays=500)
    >>> abs(info.measured_t60 - 0.4) / 0.4 <= 0.15
    True
    """
    factor = 1.0 / 1.15  # the simulated decay is typically ~15 % longer than Sabine's
    geometry = room_geometry(rng)
    best = None  # (error, info, rir)
    last = None
    for attempt in range(1, max_attempts + 1):
        if attempt > 1 and (attempt - 1) % 4 == 0:  # stubborn room: draw another one
            geometry, factor = room_geometry(rng), 1.0 / 1.15
        dims, src, mic = geometry
        sabine = target_t60 * factor
        try:
            raw, absorption = simulate_rir(dims, src, mic, sabine, sample_rate, seed + attempt, n_rays)
        except ValueError:  # no absorption in [0, 1] gives that T60 in this room
            geometry, factor = room_geometry(rng), 1.0 / 1.15
            continue
        if abs(direct_path_index(raw) - expected_direct_index(src, mic, sample_rate)) > 2:
            geometry, factor = room_geometry(rng), 1.0 / 1.15  # a reflection beats the direct path
            continue
        rir = finish_rir(raw, sample_rate)
        write_audio(path, rir, sample_rate)
        last = rir
        written, sr = sf.read(str(path), dtype="float64")
        try:
            measured = measure_t60(written, sr)
        except ValueError:
            continue
        info = RIRInfo(
            target_t60=float(target_t60),
            measured_t60=float(measured),
            sabine_t60=float(sabine),
            c50=measure_c50(written, sr),
            dims=list(dims),
            source=list(src),
            mic=list(mic),
            absorption=absorption,
            attempts=attempt,
            sample_rate=int(sample_rate),
        )
        error = abs(measured - target_t60) / target_t60
        if best is None or error < best[0]:
            best = (error, info, rir)
        if error <= goal:
            break
        factor = float(np.clip(factor * target_t60 / measured, 0.3, 2.0))
    if best is None or best[0] > tolerance:
        detail = f" (best {best[1].measured_t60:.3f} s)" if best else ""
        raise RuntimeError(f"{path}: no room reached T60 {target_t60:.3f} s within {tolerance:.0%}{detail}")
    if best[2] is not last:
        write_audio(path, best[2], sample_rate)
    best[1].attempts = attempt
    return best[1]
