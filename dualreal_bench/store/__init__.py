"""The results store: one directory per run, one JSON record per generated video.

Layout (``root`` is ``--output-dir``, ``results/`` by default)::

    <root>/<run_id>/
      run.json                                  suite, profile, creation time (first writer)
      <method_label>/
        method.json                             method name, class, config as asked, and the
                                                constructed method's describe() ("description")
        <identity>__<motion>/
          state/                                Method.save() output; complete iff state/COMPLETE
          train.json                            training statistics
          videos/p007_s0.mp4                    prompt 7, seed 0 (written last: marks the video done)
          videos/p007_s0.json                   generation provenance (time, backbone) of that video
          videos/p007_s0.extras.npz             per-video extras (e.g. controller trace)
          records/p007_s0.json                  the record (metrics, configs, versions, seeds)
          invalid/<time>/records/p007_s0.json   an invalid output a resumed run set aside
        expected/shard0of1.json                 case id -> videos each shard planned (``report``)
        events/<host>-<pid>-<time>.jsonl        what each process finished, one JSON line per stage

Every file is written atomically (a hidden temp file in the same directory, fsync,
``os.replace``), so a run killed at any moment leaves complete files or none, and a resumed
run redoes exactly the stages whose outputs are missing or invalid (an invalid one, say a
record truncated by hand or a video that does not decode, is moved aside into the case's
``invalid/`` folder, kept and logged, never deleted). Temp files are hidden (``.name...tmp``)
and never match the ``*.json`` globs readers use. Shared files (``run.json``, ``method.json``)
are created with an exclusive link, so two writers never interleave them; a case directory is
worked on under an advisory lock (``flock`` on the directory itself: no lock file), so two
processes given the same case (overlapping shards, a re-submitted job) do each stage once:
the second waits, then finds the outputs.

The writing itself is :mod:`dualreal_bench.io`'s; the record's schema is
:mod:`dualreal_bench.records`'s.

Modules: :mod:`.results` (:class:`ResultStore`: run and method metadata, shard plans, records),
:mod:`.case_dir` (:class:`CaseDir`: one case's paths, lock and set-aside folder), :mod:`.events`
(:class:`EventLog`, :func:`read_events`), :mod:`.runs` (listing runs and their status) and
:mod:`.names` (what a label, id or file name may be). Import them from here.
"""

from .case_dir import CaseDir
from .events import EventLog, read_events
from .names import DEFAULT_NAME_MAX, check_label, check_name_length, name_max, video_key
from .results import ResultStore
from .runs import expected_videos, latest_run, list_runs, run_modified, run_status

__all__ = [
    "DEFAULT_NAME_MAX",
    "CaseDir",
    "EventLog",
    "ResultStore",
    "check_label",
    "check_name_length",
    "expected_videos",
    "latest_run",
    "list_runs",
    "name_max",
    "read_events",
    "run_modified",
    "run_status",
    "video_key",
]
