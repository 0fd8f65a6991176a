"""``rekpipe local``: run the whole pipeline on this machine with the embedded emulator.

``rekpipe local run`` starts the emulator in this process, uploads a folder (or generated samples),
waits for every object's task to end, prints what happened to each object, copies the analysis
outputs to a folder and writes the HTML report of them there (:mod:`rekpipe.report`). ``rekpipe local up``
serves the emulator on loopback until Ctrl-C, for the AWS CLI and the other ``rekpipe`` commands with
``--local`` (``.rekpipe/emulator.json``).

The package is split the way the SAM CLI splits its commands:

- :mod:`.command`: the click group and commands, nothing else;
- :mod:`.options`: what a run or an ``up`` is asked to do, as data (tests set their own fields there);
- :mod:`.session`: ``local run``'s work (:func:`run_local`), which tests and scripts call too;
- :mod:`.up`: ``local up``'s work (:func:`serve_local`);
- :mod:`.sources`, :mod:`.results`, :mod:`.exceptions`: what is uploaded, what came of it, what went wrong;
- :mod:`.view`: what is printed; :mod:`.function_output`: the functions' own output sent to a log file.
"""

from __future__ import annotations

from rekpipe.cli.local.command import local
from rekpipe.cli.local.exceptions import LocalRunIncompleteError
from rekpipe.cli.local.options import EmulatorOptions, LocalRunOptions, LocalUpOptions
from rekpipe.cli.local.results import LocalRunResult, ObjectOutcome
from rekpipe.cli.local.session import run_local
from rekpipe.cli.local.up import serve_local

__all__ = ["EmulatorOptions", "LocalRunIncompleteError", "LocalRunOptions", "LocalRunResult", "LocalUpOptions",
           "ObjectOutcome", "local", "run_local", "serve_local"]
