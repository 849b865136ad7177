"""The per-modality health state machine: frames and polls in, states and transitions out.

Time is injected: every call carries the caller's nanosecond times (header stamps
and receive times, or a bag's), and nothing reads a clock, so replaying a bag gives
the same states and the same transitions every time.

Rules (thresholds in :class:`HealthConfig`):

- A frame is bad when any content, stream or baseline check (partial damage against
  the stream's own good frames, ``baseline.py``) gives a reason. An OK modality
  becomes DEGRADED after ``fault_frames`` bad frames in a row; a LOST one that
  receives a bad frame becomes DEGRADED at once (it is alive, but not usable).
- A DEGRADED or LOST modality is OK after ``recover_frames`` good frames in a row;
  in between a LOST one is DEGRADED ("recovering").
- LOST comes only from silence (or no message yet): content faults, even "all depth
  invalid", are DEGRADED, because the sensor still talks and may recover at any
  frame; downstream, both states mask the modality out of the model's input, except
  a DEGRADED one whose grade is mild (only noise or depth loss, below their severe
  thresholds) under the ``keep_mild`` policy. A recovering modality keeps its grade.
- Silence is checked by :meth:`HealthMonitor.poll` and, for its own modality, by
  :meth:`HealthMonitor.observe` before the frame; either way the frames after it must
  prove themselves.
- Silence is what the observer saw, not the clock: a modality's silence grows by the
  time between consecutive calls of the monitor (any ``observe`` or ``poll``), and when
  the monitor is told its observer's poll period, by at most the longer of one poll period
  and one camera period per gap (a late poll on a loaded machine counts in full, so a drop
  is seen on time). A longer gap between calls is the observer's own stall (the process
  starved of CPU, stopped, in a long GC): the cameras' messages queued meanwhile, and they are taken
  after it, so the stall is no evidence of silence. An observer that calls on time
  (every gap at most one camera period) sees exactly the wall-clock silence, so a silent
  camera is LOST after ``silence_periods`` as before; after a stall it needs that much
  silence seen by a running observer, and every call counts, so nothing stays hidden.
  A frame that arrives after such a silence is judged by its own stamp: one taken
  within the limit after the previous frame was delivered late, not lost.
- The learned period is the longer of the median receive interval and the median stamp
  interval (``rate.py``): late, bunched deliveries under load shorten the first, never
  the second.
"""

from __future__ import annotations

from collections import deque

from unimrseg_core.health.baseline import BaselineChecks, Verdict
from unimrseg_core.health.checks import FrameCheck, check_frame
from unimrseg_core.health.config import HealthConfig
from unimrseg_core.health.rate import RateEstimator
from unimrseg_core.health.state import Grade, HealthState, ModalityHealth, Transition
from unimrseg_core.health.stream import StreamChecks
from unimrseg_core.health.text import seconds
from unimrseg_core.modalities import MODALITIES

__all__ = ["NO_MESSAGE", "HealthMonitor"]

NO_MESSAGE = "no message yet"


class _Track:
    """Everything the monitor knows about one modality."""

    def __init__(self, modality: str, config: HealthConfig) -> None:
        self.modality = modality
        self.state = HealthState.LOST
        self.reasons: tuple[str, ...] = (NO_MESSAGE,)
        self.since_ns: int | None = None
        self.last_stamp_ns: int | None = None
        self.last_receive_ns: int | None = None
        self.silent_ns = 0  # silence seen since the last message (the observer's stalls left out)
        self.messages = 0
        self.bad_run = 0  # bad frames in a row
        self.good_run = 0  # good frames in a row
        self.rate = RateEstimator(window=config.rate_window, min_samples=config.min_rate_samples)
        self.stamp_rate = RateEstimator(window=config.rate_window, min_samples=config.min_rate_samples)
        self.stream = StreamChecks(config.frozen_frames)
        self.baseline = BaselineChecks(modality, config)
        self.grade = Grade.SEVERE

    def snapshot(self, *, keep_mild: bool) -> ModalityHealth:
        kept = self.state is HealthState.DEGRADED and self.grade is Grade.MILD and keep_mild
        return ModalityHealth(
            modality=self.modality,
            state=self.state,
            reasons=self.reasons,
            since_ns=self.since_ns,
            last_stamp_ns=self.last_stamp_ns,
            messages=self.messages,
            rate_hz=self.rate.rate_hz,
            grade=self.grade,
            usable=self.state is HealthState.OK or kept,
        )


class HealthMonitor:
    """Health of every modality in ``MODALITIES``, from the frames it sees and the times it is told."""

    def __init__(self, config: HealthConfig | None = None, *, poll_period_ns: int | None = None) -> None:
        """``poll_period_ns``: how often the observer polls (None: every gap between calls is silence)."""
        self.config = (config if config is not None else HealthConfig()).validate()
        if poll_period_ns is not None and not poll_period_ns > 0:
            raise ValueError(f"poll_period_ns must be > 0, got {poll_period_ns}")
        self.poll_period_ns = poll_period_ns
        self._tracks = {m: _Track(m, self.config) for m in MODALITIES}
        self._transitions: deque[Transition] = deque(maxlen=self.config.max_transitions)
        self._last_call_ns: int | None = None
        self.stalled_ns = 0
        """The observer's own stalls so far: the time between calls no camera's silence counted."""

    def observe(
        self,
        modality: str,
        image: object,
        *,
        stamp_ns: int,
        receive_ns: int,
        encoding: str | None = None,
    ) -> ModalityHealth:
        """Check one received frame (sensor units, as in ``modalities.SENSOR_FORMATS``) and update the state.

        ``stamp_ns`` is the header stamp, ``receive_ns`` when it arrived (both ns, any
        epoch, but each consistent over calls); ``encoding`` is the ROS encoding if
        known. Any image is accepted: a malformed one is a bad frame with a reason.
        Raises ValueError only for an unknown modality name (a programming error).
        """
        track = self._track(modality)
        stamp_ns, receive_ns = int(stamp_ns), int(receive_ns)
        self._advance(receive_ns)
        self._check_silence(track, receive_ns, stamp_ns=stamp_ns)
        try:
            frame = check_frame(modality, image, self.config)
        except Exception as exc:  # a health check must never take the node down; tests keep this unused
            frame = FrameCheck((f"unreadable image: {type(exc).__name__}: {exc}",), None, None)
        stream_reasons = track.stream.check(
            stamp_ns=stamp_ns, fingerprint=frame.fingerprint, shape=frame.shape, encoding=encoding
        )
        # partial damage is only looked for where the frame alone looked fine (a blackout is no washout)
        verdict = Verdict() if frame.reasons else track.baseline.check(frame.signals, frame.shape)
        reasons = (*stream_reasons, *frame.reasons, *verdict.reasons)
        track.rate.add(receive_ns)
        track.stamp_rate.add(stamp_ns)
        track.messages += 1
        track.last_stamp_ns = stamp_ns
        track.last_receive_ns = receive_ns
        track.silent_ns = 0
        if reasons:
            grade = verdict.grade if len(reasons) == len(verdict.reasons) else Grade.SEVERE
            self._bad_frame(track, reasons, grade, receive_ns)
        else:
            track.baseline.learn(frame.signals)
            self._good_frame(track, receive_ns)
        return self._snapshot(track)

    def poll(self, now_ns: int) -> dict[str, ModalityHealth]:
        """Apply silence at ``now_ns`` and return every modality's health, in MODALITIES order."""
        now_ns = int(now_ns)
        self._advance(now_ns)
        for track in self._tracks.values():
            self._check_silence(track, now_ns)
        return {m: self._snapshot(track) for m, track in self._tracks.items()}

    def usable(self, now_ns: int) -> tuple[str, ...]:
        """The modalities the model may use at ``now_ns`` (OK, or mild and kept), in MODALITIES order."""
        return tuple(m for m, health in self.poll(now_ns).items() if health.usable)

    @property
    def transitions(self) -> tuple[Transition, ...]:
        """Every state change kept so far (at most ``max_transitions``), oldest first."""
        return tuple(self._transitions)

    def pop_transitions(self) -> list[Transition]:
        """The state changes since the last call, oldest first (for logging each once)."""
        popped = list(self._transitions)
        self._transitions.clear()
        return popped

    def expected_period_ns(self, modality: str) -> float:
        """The period silence is measured against: configured, else learned, else the default."""
        return self._expected_period(self._track(modality))[0]

    # ------------------------------------------------------------------ internals

    def _snapshot(self, track: _Track) -> ModalityHealth:
        return track.snapshot(keep_mild=self.config.degraded_policy == "keep_mild")

    def _track(self, modality: str) -> _Track:
        try:
            return self._tracks[modality]
        except KeyError:
            raise ValueError(f"unknown modality {modality!r}; valid: {', '.join(MODALITIES)}") from None

    def _expected_period(self, track: _Track) -> tuple[float, str]:
        configured = self.config.period_ns(track.modality)
        if configured is not None:
            return configured, "configured"
        # the longer of the two: late, bunched deliveries shorten the median receive interval
        # (the stamps keep the sensor's own period), a replay slower than real time shortens
        # the stamps' (the receive times keep the pace that messages really come at)
        learned = [p for p in (track.rate.period_ns, track.stamp_rate.period_ns) if p is not None]
        if learned:
            return max(learned), "learned"
        return 1e9 / self.config.default_rate_hz, "default"

    def _advance(self, now_ns: int) -> None:
        """The time since the previous call is silence of every modality seen so far, up to that
        modality's cap (:meth:`_stall_cap`): beyond it the observer itself was stalled, and saw nothing."""
        if self._last_call_ns is not None and now_ns > self._last_call_ns:
            gap = now_ns - self._last_call_ns
            stalled = 0
            for track in self._tracks.values():
                if track.last_receive_ns is not None:
                    seen = min(gap, self._stall_cap(track))
                    track.silent_ns += seen
                    stalled = max(stalled, gap - seen)
            self.stalled_ns += stalled
        if self._last_call_ns is None or now_ns > self._last_call_ns:
            self._last_call_ns = now_ns

    def _stall_cap(self, track: _Track) -> float:
        """The most silence one gap between calls can show: unbounded without a poll period, else
        the longer of the poll period and the camera's expected period. A late poll (a loaded
        machine) still counts in full, so a drop is seen on time; a gap longer than both is the
        observer's stall, and the frames the camera sent meanwhile are still queued for it."""
        if self.poll_period_ns is None:
            return float("inf")
        return max(float(self.poll_period_ns), self._expected_period(track)[0])

    def _check_silence(self, track: _Track, now_ns: int, *, stamp_ns: int | None = None) -> None:
        """LOST when the observer saw no message for longer than the limit; for ``observe``, only
        if the arriving frame's own stamp shows the gap too (else it was taken on time and
        delivered late)."""
        if track.last_receive_ns is None:
            return  # never seen: LOST with NO_MESSAGE already
        period, source = self._expected_period(track)
        limit = self.config.silence_periods * period
        late_not_silent = (
            stamp_ns is not None
            and track.last_stamp_ns is not None
            and stamp_ns - track.last_stamp_ns <= limit
        )
        if track.silent_ns > limit and not late_not_silent:
            track.bad_run = track.good_run = 0
            track.grade = Grade.SEVERE
            reason = f"silent for {seconds(track.silent_ns)} (expected period {seconds(period)}, {source})"
            self._set(track, HealthState.LOST, (reason,), now_ns)

    def _bad_frame(self, track: _Track, reasons: tuple[str, ...], grade: Grade, time_ns: int) -> None:
        track.good_run = 0
        track.bad_run += 1
        if track.state is HealthState.OK and track.bad_run < self.config.fault_frames:
            track.reasons = reasons  # not confirmed yet: still OK, but say what looks wrong
        else:
            track.grade = grade
            self._set(track, HealthState.DEGRADED, reasons, time_ns)

    def _good_frame(self, track: _Track, time_ns: int) -> None:
        track.bad_run = 0
        track.good_run += 1
        needed = self.config.recover_frames
        if track.state is HealthState.OK:
            track.reasons = ()
        elif track.good_run >= needed:
            track.grade = Grade.NONE
            self._set(track, HealthState.OK, (), time_ns, note=f"recovered: {track.good_run} good frames")
        else:
            recovering = f"recovering: {track.good_run} of {needed} good frames"
            self._set(track, HealthState.DEGRADED, (recovering,), time_ns)

    def _set(
        self,
        track: _Track,
        state: HealthState,
        reasons: tuple[str, ...],
        time_ns: int,
        *,
        note: str | None = None,
    ) -> None:
        if state is not track.state:
            reason = note or "; ".join(reasons)
            self._transitions.append(Transition(track.modality, time_ns, track.state, state, reason))
            track.since_ns = time_ns
        track.state = state
        track.reasons = reasons
