#!/usr/bin/env bash
# Mutation testing with mutmut 3: mutate the given modules in a scratch copy of the tree and
# run the tests that cover each mutant; prints killed / survived and the score.
#
#   scripts/mutation.sh [GROUP]       GROUP: pure (default), pipeline or all
#
# pure:      attribution, binding rules, ledger, state codec (unit tests, and the ledger's
#            adjustments and settlement over HTTP; minutes)
# pipeline:  webhook and crypto, inbox, outbox, welcome (scenario tests over HTTP; hours on
#            a 2-core machine)
set -euo pipefail
cd "$(dirname "$0")/.."
group="${1:-pure}"
case "$group" in
  pure)
    modules='"guidebot/commerce/attribution.py", "guidebot/contacts/binding.py", "guidebot/commerce/ledger.py", "guidebot/contacts/state_codec.py"'
    tests='"tests/unit/test_attribution.py", "tests/unit/test_binding_rules.py", "tests/unit/test_ledger.py", "tests/unit/test_ledger_properties.py", "tests/unit/test_ledger_append.py", "tests/unit/test_state_codec.py", "tests/scenario/test_orders_ledger.py"' ;;
  pipeline)
    modules='"guidebot/wecom/webhook.py", "guidebot/wecom/crypto.py", "guidebot/inbox.py", "guidebot/outbox.py", "guidebot/contacts/welcome.py"'
    # with the scenario tests that reach them in-process: SOP delivery (outbox batches and
    # retries), 微信客服 replies (outbox in order), stored materials and cards in welcomes,
    # internal events reaching the SOP triggers, the outbox's retries against a database,
    # the metrics (welcome latency, rejected callbacks), the address book's names in welcomes.
    # Tests that run guidebot in a child process (test_pipeline_processes) are left out: the
    # child imports the unmutated package.
    tests='"tests/unit/test_crypto_vectors.py", "tests/scenario/test_webhook_security.py", "tests/scenario/test_webhook_vectors.py", "tests/scenario/test_pipeline.py", "tests/scenario/test_replay.py", "tests/scenario/test_contact_added.py", "tests/scenario/test_links_welcome.py", "tests/scenario/test_sop_delivery.py", "tests/scenario/test_sop_cards.py", "tests/scenario/test_kf.py", "tests/scenario/test_materials_steps.py", "tests/scenario/test_materials_video.py", "tests/scenario/test_outbox_retry.py", "tests/scenario/test_sop_triggers.py", "tests/unit/test_inbox_close.py", "tests/scenario/test_metrics.py", "tests/scenario/test_directory.py"' ;;
  all) "$0" pure && exec "$0" pipeline ;;
  *) echo "unknown group $group (pure, pipeline, all)" >&2; exit 2 ;;
esac
py="${PYTHON:-$PWD/.venv-test/bin/python}"
"$py" -m pip install -q "mutmut>=3,<4"
# MUTATION_DIR keeps the scratch copy (and mutmut's results in it) after the run.
if [ -n "${MUTATION_DIR:-}" ]; then
  scratch="$MUTATION_DIR"; rm -rf "$scratch"; mkdir -p "$scratch"
else
  scratch="$(mktemp -d)"; trap 'rm -rf "$scratch"' EXIT
fi
git ls-files -z | xargs -0 -I{} cp --parents {} "$scratch"
lines() { echo "$1" | tr -d '"' | tr ',' '\n' | sed 's/^ */    /'; }
cat > "$scratch/setup.cfg" <<CFG
[mutmut]
source_paths =
$(lines "$modules")
pytest_add_cli_args_test_selection =
$(lines "$tests")
# a mutant that makes a test hang (a drain that never ends) is killed after 60 s, not the
# suite's 300 s (the slowest selected test takes about 6 s)
pytest_add_cli_args =
    --timeout=60
also_copy =
    guidebot
    handlers
    content_library
    config.toml
CFG
cd "$scratch"
# The scenario tests spend much of their time waiting (HTTP round trips, fsync, polls), so
# more children than cores keeps the cores busy (MUTATION_CHILDREN, default 4 per core).
children="${MUTATION_CHILDREN:-$(( $(nproc) * 4 ))}"
"$py" -m mutmut run --max-children "$children" >/dev/null 2>&1 || true
"$py" -m mutmut results --all true > results.txt 2>&1 || true
killed=$(grep -c ': killed' results.txt || true)
survived=$(grep -c ': survived' results.txt || true)
timeout=$(grep -c ': timeout' results.txt || true)
# A mutant no selected test reaches is not killed: it counts against the score.
untested=$(grep -c ': no tests' results.txt || true)
total=$((killed + survived + timeout + untested))
echo "group $group: killed $killed, timed out $timeout (counted as killed), survived $survived, reached by no test $untested (counted as survived)"
killed=$((killed + timeout))
[ "$total" -gt 0 ] && echo "score: $(( 100 * killed / total ))%"
grep -E ': (survived|no tests)' results.txt | head -60 || true
