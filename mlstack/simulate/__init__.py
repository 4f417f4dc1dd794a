"""The deploy simulation: checks that live *between* resources of a recorded plan.

The policy pack judges each resource alone. The simulation asks whether the platform would come up and work:
it renders every Helm release with the real ``helm`` against the packaged upstream charts, then checks
admission (LimitRanges, quotas, PodDisruptionBudgets, Pod Security), scheduling and capacity, install
ordering (CRDs before their objects), IAM access through every policy layer, what clients send against
bucket policies, and network reachability under the NetworkPolicies. See ``docs/simulation.md`` for what is
modelled and what is not.

Checks are declared with :func:`mlstack.simulate.framework.sim_check` in the domain modules listed in
:data:`mlstack.simulate.catalog.MODULES`; each is a plain generator over a :class:`World`.
"""
