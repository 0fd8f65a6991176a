"""CDK constructs of the Rekognition pipeline: one module per part, composed by ``pipeline_stack``.

Importing this package makes the shared layer's package (``rekpipe_shared``) importable, so the
stack derives settings, environment names and IAM actions from the same code the functions run.
"""

from __future__ import annotations

import sys

from stack.paths import SHARED_LAYER_DIR

try:
    import rekpipe_shared  # noqa: F401  (installed with the project's packaging)
except ImportError:  # a plain checkout: use the layer's source folder
    sys.path.insert(0, str(SHARED_LAYER_DIR))
