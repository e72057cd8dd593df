"""The detection harness's scoring: only the first alarm after a true change detects it."""

from __future__ import annotations

from benchmarks.drift.detection import GOAL, meets_goal, score


def test_re_fires_after_a_detection_and_late_alarms_count_as_false():
    delays, false = score([5, 120, 130, 900, 2_000, 2_050, 2_600], changes=[100, 2_000], post=500)
    assert delays == [20, 0]
    # 5: before any change; 130: a re-fire; 900: later than post; 2,050 and 2,600: re-fire, late.
    assert false == 5


def test_a_change_without_an_alarm_in_its_window_is_missed():
    delays, false = score([700], changes=[100], post=500)
    assert delays == [None] and false == 1


def test_the_goal_holds_per_family_figures():
    ok = {"detected_share": 1.0, "median_delay_events": GOAL["median_delay_events"], "false_alarms_per_100k": 0.5}
    assert meets_goal(ok)
    assert not meets_goal({**ok, "false_alarms_per_100k": 1.5})
    assert not meets_goal({**ok, "median_delay_events": None})
