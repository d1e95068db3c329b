"""An idle worker carries no SDK it has not used yet: they load at their first use."""

from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY = ("openai", "numpy", "premailer", "reportlab", "PIL", "opentelemetry", "pypdf")


def test_importing_the_worker_system_loads_no_sdk_before_its_first_use(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = ("import json, sys, gabay.actors; "
            f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))")
    env = {**os.environ, "GABAY_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert json.loads(out.splitlines()[-1]) == []
