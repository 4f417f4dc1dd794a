"""The mlstack policy pack: guardrails checked by ``pulumi preview --policy-pack policies`` and ``mlstack check``.

Rules live in one module per domain; :mod:`policies.catalog` collects them into ``ALL_RULES``,
and :mod:`policies.waiving` builds the engine's policies from them with ``policies/waivers.yaml`` applied.
"""
