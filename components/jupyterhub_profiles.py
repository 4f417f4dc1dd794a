"""Team profile filtering for JupyterHub's KubeSpawner. This file runs inside the hub pod, not in mlstack.

``components/notebooks.py`` ships it unchanged as a ``hub.extraFiles`` entry mounted next to the chart's
``jupyterhub_config.py`` (zero-to-jupyterhub-k8s@4.4.0 ``jupyterhub/files/hub/jupyterhub_config.py`` puts
that directory on ``sys.path``), and a two-line ``hub.extraConfig`` entry installs it:

    import mlstack_profiles
    c.KubeSpawner.profile_list = mlstack_profiles.team_profile_list(get_config("custom.mlstack.teams"))

It uses nothing but the standard library, so it imports the same way in the hub image (Python 3.12,
jupyterhub 5.5.0, jupyterhub-kubespawner 7.0.0, oauthenticator 17.4.0: zero-to-jupyterhub-k8s@4.4.0
``images/hub/requirements.txt``) and in mlstack's tests.

How it is used, read at those versions:

- ``KubeSpawner.profile_list`` may be a callable taking the spawner (jupyterhub/kubespawner@7.0.0
  ``kubespawner/spawner.py``, trait ``profile_list = Union([List(Dict()), Callable()])``). KubeSpawner calls it
  both to render the options form and in ``load_user_options`` before it validates the user's choice
  (``_validate_user_options``), so a user can only start a profile this function returned for them.
- A profile's ``kubespawner_override`` may set ``namespace``: KubeSpawner starts the pod reflector only after
  ``load_user_options`` ("namespace can be changed via kubespawner_override") and keeps one reflector per
  namespace when ``enable_user_namespaces`` is off (``_get_reflector_key``), so the hub needs rights only in
  the team namespaces, not cluster-wide.
- The user's groups are JupyterHub groups that GenericOAuthenticator keeps in sync with the IdP's groups
  claim when ``manage_groups`` is on (jupyterhub/oauthenticator@17.4.0 ``oauthenticator/oauth2.py``
  ``_apply_managed_groups``); the spawner's ``user.groups`` lists them (objects with a ``name``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any


class NoTeamProfile(PermissionError):
    """The user is in no team group this hub serves, so there is no namespace to start a server in."""


def group_names(spawner: Any) -> set[str]:
    """Names of the JupyterHub groups of the spawner's user (``spawner.user.groups``)."""
    return {group.name for group in getattr(spawner.user, "groups", None) or ()}


def profiles_for(groups: Iterable[str], teams: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The profiles of every team whose IdP group is among ``groups``, in team order, as fresh copies (KubeSpawner
    adds keys to the dicts it is given). ``teams`` maps a team to ``{"group": ..., "profiles": [...]}``."""
    member_of = set(groups)
    chosen: list[dict[str, Any]] = []
    for team in sorted(teams):
        entry = teams[team]
        if entry["group"] in member_of:
            chosen.extend(copy.deepcopy(list(entry["profiles"])))
    if chosen and not any(profile.get("default") for profile in chosen):
        chosen[0]["default"] = True
    return chosen


def team_profile_list(teams: Mapping[str, Mapping[str, Any]]) -> Callable[[Any], list[dict[str, Any]]]:
    """A ``KubeSpawner.profile_list`` callable offering each user the profiles of their teams only.

    A user in no team group gets an error instead of an empty list: with an empty list KubeSpawner would start
    the server with the hub's own settings, in the hub's namespace, outside every team's quota and policies.
    """
    frozen = copy.deepcopy(dict(teams))

    def profile_list(spawner: Any) -> list[dict[str, Any]]:
        profiles = profiles_for(group_names(spawner), frozen)
        if not profiles:
            name = getattr(spawner.user, "name", "this user")
            raise NoTeamProfile(
                f"{name} is in none of the team groups "
                f"({', '.join(sorted(entry['group'] for entry in frozen.values()))}); "
                "ask the platform team to add you to your team's group in the identity provider"
            )
        return profiles

    return profile_list
