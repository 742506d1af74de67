#!/usr/bin/env bash
# Shows that the access proofs can fail: weakens each scope, field rule and read mask of
# policies/policy.csv in turn and runs the proof that covers it with that policy
# (CRM_TEST_POLICY, read by the test harness only). Every mutant must make its proof fail;
# a mutant the proofs don't notice ("SURVIVED") is a rule nothing tests.
#
#   - an allow rule with a narrower scope than `all`   → the scope becomes `all`
#   - a deny rule                                       → turned into an allow
#   - a write field rule (p2)                          → removed (every field may be set)
#   - a read mask (p3)                                 → removed (the field is shown)
#
# Reads are checked by the exhaustive read matrix, writes by the read matrix's `may` of
# every row and by the write matrix (all on the embedded SQLite). Usage: bash tests/policy-mutants.sh [max mutants]; prints one line per
# mutant and a summary, and exits non-zero when a mutant survived.
set -uo pipefail
cd "$(dirname "$0")/.."

max=${1:-1000}
work=$(mktemp -d)
trap 'rm -rf "${work}"' EXIT

# The proofs, built once.
cargo test -p crm-e2e --test e2e --no-run -q 2>/dev/null || { echo "build failed"; exit 2; }

# Write scopes that widening can't show: every change first needs the record readable
# (`check_may_change` answers NOT_FOUND outside the read scope) and every create needs its
# account readable (the reference check), so a write scope equal to or inside the role's
# read scope is bounded by it. Listed, not run.
bounded_by_read() {
  case "$1" in
    "sales/internal/ShareGrant/archive/on_owned_accounts" | "sales/internal/ShareGrant/archive/own" | \
    "partner_user/supplier/OrderLine/update/own_product_lines" | \
    "partner_user/distributor/Interaction/create/on_visible_accounts" | \
    "partner_user/distributor/Case/write/own_org_cases_on_visible_accounts" | \
    "partner_user/distributor/Shipment/update/of_my_orders" | \
    */internal/Task/create/on_visible_records | */*/CaseComment/create/on_visible_cases) return 0 ;;
  esac
  return 1
}

# Scopes that widening to `all` can't change for that role, with the reason. Listed, not run.
equivalent() {
  case "$1" in
    management/internal/CaseComment/read/on_visible_cases | \
    sales/internal/CaseComment/read/on_visible_cases | \
    support/internal/CaseComment/read/on_visible_cases)
      echo "the role reads every case, so every comment hangs on a visible case" ;;
    management/internal/Task/read/on_visible_records | sales/internal/Task/read/on_visible_records)
      echo "the role reads every account, contact, lead, opportunity and case a task can be on" ;;
    */internal/Notification/*/addressed_to_me)
      echo "every notification path (list, count, mark read) selects the caller's own before the policy filter; the scope is a second guard" ;;
    *) return 1 ;;
  esac
}

killed=0
survived=0
n=0
while IFS= read -r numbered; do
  line_no=${numbered%%:*}
  rule=${numbered#*:}
  IFS=',' read -r kind role domain ty action scope effect <<<"$(echo "${rule}" | tr -d ' ')"
  case "${kind}" in
    p)
      if [ "${effect}" = "deny" ]; then
        mutant="${kind}, ${role}, ${domain}, ${ty}, ${action}, ${scope}, allow"
      elif bounded_by_read "${role}/${domain}/${ty}/${action}/${scope}"; then
        echo "n/a      line ${line_no}: ${rule} (bounded by the read scope: a change needs the record readable)"
        continue
      elif why=$(equivalent "${role}/${domain}/${ty}/${action}/${scope}"); then
        echo "n/a      line ${line_no}: ${rule} (equivalent: ${why})"
        continue
      elif [ "${scope}" != "all" ]; then
        mutant="${kind}, ${role}, ${domain}, ${ty}, ${action}, all, ${effect}"
      else
        continue
      fi
      # Write scopes show in every row's `may` (the read matrix checks it) and in the
      # write matrix's mutations.
      case "${action}" in read) proof=read_matrix ;; *) proof="read_matrix write_matrix" ;; esac
      ;;
    p2) mutant="(removed)"; proof=write_matrix ;;
    p3)
      # A mask on a type the domain reads no rows of can't show: no mutant to kill.
      if [ "${ty}" != "*" ] && ! grep -qE "^p, [a-z_]+, ${domain}, ${ty}, read, [a-z_]+, allow" policies/policy.csv; then
        echo "n/a      line ${line_no}: ${rule} (no role of ${domain} reads ${ty})"
        continue
      fi
      # Equivalent: the read scope itself already requires the mask's fact.
      if [ "${domain}/${ty}/${action}" = "distributor/Interaction/body" ]; then
        echo "n/a      line ${line_no}: ${rule} (the read scope already requires partner_visible)"
        continue
      fi
      mutant="(removed)"; proof=read_matrix ;;
    *) continue ;;
  esac
  n=$((n + 1))
  [ "${n}" -gt "${max}" ] && break
  if [ "${mutant}" = "(removed)" ]; then
    sed "${line_no}d" policies/policy.csv >"${work}/policy.csv"
  else
    sed "${line_no}s/.*/${mutant}/" policies/policy.csv >"${work}/policy.csv"
  fi
  # shellcheck disable=SC2086 # one filter per proof
  if CRM_TEST_POLICY="${work}/policy.csv" cargo test -q -p crm-e2e --test e2e -- ${proof} \
      >"${work}/log" 2>&1; then
    survived=$((survived + 1))
    echo "SURVIVED ${proof}: line ${line_no}: ${rule} -> ${mutant}"
  else
    killed=$((killed + 1))
    echo "killed   ${proof}: line ${line_no}: ${rule} -> ${mutant}"
  fi
done < <(grep -n -E '^(p|p2|p3),' policies/policy.csv)

echo "policy mutants: ${killed} killed, ${survived} survived"
[ "${survived}" -eq 0 ]
