#!/usr/bin/env bash
# File the outcome of one nightly drift check of one environment as GitHub issues, at most one open issue per
# environment, check and outcome (.github/workflows/drift.yml, docs/gitops.md "Drift").
#
#   scripts/drift-issue.sh CHECK STACK CODE REPORT ERRORS
#
# CHECK   guardrails (`mlstack audit`) or state (`pulumi preview --refresh --expect-no-changes`)
# CODE    the check's exit code
# REPORT  the check's report (markdown for the audit, the preview's output for state); may be empty
# ERRORS  the check's standard error
#
# Exit codes are mapped to outcomes:
#   guardrails: 0 clean, 1 drift, 3 denied (a read was refused: incomplete), anything else broken
#     (docs/live-tooling.md, "Exit codes").
#   state: 0 clean; 7 drift (the Pulumi CLI's ExitNoChanges, pkg/cmd/pulumi/cmd exit code taxonomy); any other
#     non-zero code is drift when the CLI said "no changes were expected" (CLIs older than the taxonomy exit
#     255 for it, pulumi/pulumi#5144), else broken.
# Every issue carries the label `drift` and `env:STACK` (created if missing) and one label for the outcome
# (<check>-drift, <check>-denied, <check>-broken). An open issue with the same labels gets a comment instead of
# a second issue; the environment's open issues of this check whose outcome no longer holds are closed. The
# script exits 1 when the outcome is broken, so the job shows it, and 0 otherwise.
set -euo pipefail

if [ "$#" -ne 5 ]; then
  echo "usage: $0 CHECK STACK CODE REPORT ERRORS" >&2
  exit 2
fi
check=$1 stack=$2 code=$3 report=$4 errors=$5

case "$check" in
  guardrails)
    case "$code" in
      0) outcome=clean ;;
      1) outcome=drift ;;
      3) outcome=denied ;;
      *) outcome=broken ;;
    esac
    what="the guardrails (mlstack audit ${stack})"
    ;;
  state)
    if [ "$code" = 0 ]; then
      outcome=clean
    elif [ "$code" = 7 ] || grep -q "no changes were expected" "$errors" "$report" 2>/dev/null; then
      outcome=drift
    else
      outcome=broken
    fi
    what="the Pulumi state (pulumi preview --refresh --expect-no-changes --stack ${stack})"
    ;;
  *)
    echo "unknown check '$check': guardrails or state" >&2
    exit 2
    ;;
esac
echo "${check} ${stack}: exit ${code} -> ${outcome}"

case "$outcome" in
  drift) title="Drift in ${stack}: ${what} changed outside the pipeline" ;;
  denied) title="Drift check of ${stack} incomplete: a read was denied (${check})" ;;
  broken) title="Drift check of ${stack} could not run (${check}, exit ${code})" ;;
  *) title="" ;;
esac

env_label="env:${stack}"
# --force updates an existing label instead of failing, so this creates the labels once and is idempotent.
gh label create drift --force --color d93f0b --description "Nightly drift check found a difference" >/dev/null
gh label create "$env_label" --force --color 0e8a16 --description "Environment ${stack}" >/dev/null

if [ "$outcome" != clean ]; then
  kind="${check}-${outcome}"
  gh label create "$kind" --force --color fbca04 >/dev/null
  body=$(mktemp)
  {
    echo "Nightly check of ${what}: exit ${code} (${outcome})."
    echo
    # An issue or comment body holds at most 65536 characters: keep the head of a report, the tail of errors.
    if [ "$outcome" = drift ] && [ -s "$report" ]; then
      head -c 60000 "$report"
    else
      echo '```'
      tail -c 60000 "$errors" 2>/dev/null || true
      echo '```'
    fi
    if [ -n "${RUN_URL:-}" ]; then
      echo
      echo "Run: ${RUN_URL}"
    fi
  } > "$body"
  existing=$(gh issue list --state open --label drift --label "$env_label" --label "$kind" --json number --jq '.[0].number')
  if [ -n "$existing" ]; then
    gh issue comment "$existing" --body-file "$body"
  else
    gh issue create --title "$title" --body-file "$body" --label drift --label "$env_label" --label "$kind"
  fi
fi

# Close this environment's issues of this check whose outcome no longer holds.
for other in drift denied broken; do
  [ "$other" = "$outcome" ] && continue
  for number in $(gh issue list --state open --label drift --label "$env_label" --label "${check}-${other}" --json number --jq '.[].number'); do
    gh issue close "$number" --comment "Resolved: tonight's ${check} check of ${stack} exited ${code} (${outcome})."
  done
done

[ "$outcome" != broken ]
