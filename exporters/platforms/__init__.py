"""One module per platform: how an `EvalRecord` batch becomes that platform's requests (docs/exporters.md).

`EXPORTERS` maps each destination kind to its exporter; `gating.profile.EXPORT_KINDS` names the same kinds.
"""

from __future__ import annotations

from exporters.platforms.braintrust import BRAINTRUST
from exporters.platforms.langfuse import LANGFUSE
from exporters.platforms.langsmith import LANGSMITH
from exporters.platforms.otlp import OTLP
from exporters.platforms.phoenix import PHOENIX
from exporters.protocol import EvalExporter

EXPORTERS: dict[str, EvalExporter] = {
    exporter.kind: exporter for exporter in (OTLP, PHOENIX, LANGFUSE, BRAINTRUST, LANGSMITH)
}
