"""The checkpoint audit: config × naming × tensors, before anyone loads a weight.

    >>> from quantresolve.audit import audit_checkpoint
    >>> report = audit_checkpoint("fixtures/checkpoints/modelopt-mixed")   # doctest: +SKIP
    >>> report.exit_code(), report.coverage["quantized_linear_param_fraction"]   # doctest: +SKIP
    (0, 0.75)

Public API: :func:`audit_checkpoint`, :func:`audit_inventory`, :class:`AuditReport`,
:class:`ModuleReport`, :data:`CODES` (every finding code with its severity),
:data:`RENDERERS` (``text`` / ``json`` / ``markdown`` / ``html``).
"""

from quantresolve.audit.codes import CODES, FindingCode
from quantresolve.audit.engine import audit_checkpoint, audit_inventory
from quantresolve.audit.render import RENDERERS
from quantresolve.audit.report import SCHEMA_VERSION, AuditReport, ModuleReport

__all__ = ["CODES", "RENDERERS", "SCHEMA_VERSION", "AuditReport", "FindingCode", "ModuleReport",
           "audit_checkpoint", "audit_inventory"]
