#!/usr/bin/env bash
# Grade a student's loss outputs with the loss service and write Gradescope's results.json.
#
# Usage: grade.sh SERVICE_URL LOSS SEED SHAPE STUDENT_OUTPUT RESULTS_JSON
#   SERVICE_URL     e.g. http://127.0.0.1:8000
#   LOSS            a loss name or alias, e.g. categorical_crossentropy
#   SEED SHAPE      the exercise the student was given, e.g. 42 and 4,3 (or [4,3])
#   STUDENT_OUTPUT  a JSON file {"loss": ..., "per_sample": [...], "gradient": [[...]]}
#   RESULTS_JSON    where to write results.json (on Gradescope: /autograder/results/results.json)
#
# Optional environment: PARAMS (a JSON object, default {}), OUTPUTS (default loss,per_sample,gradient),
# RTOL (1e-5), ATOL (1e-8), VISIBILITY (visible | hidden | after_due_date | after_published),
# API_KEY (sent as X-API-Key), JQ (the jq to use; set it empty to use the plain-bash path).
#
# Needs bash and curl. With jq, only the outputs being graded are taken from the student's file and
# a service error becomes a readable message; without jq the file is sent as it is.
# Exit status: 0 graded; 1 results.json written with a score of 0 and the reason (unreadable file,
# service error or unreachable); 2 usage error (nothing written).
set -u

usage() { sed -n '4,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ "$#" -eq 6 ] || usage
url=${1%/}; loss=$2; seed=$3; shape=$4; student=$5; results=$6

params=${PARAMS:-"{}"}
outputs=${OUTPUTS:-loss,per_sample,gradient}
rtol=${RTOL:-1e-5}
atol=${ATOL:-1e-8}
visibility=${VISIBILITY:-visible}
JQ=${JQ-jq}

number='^[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$'
shape=${shape//[][ ]/}
[[ $loss =~ ^[A-Za-z0-9_-]+$ ]] || { echo "LOSS must be a loss name, got '$loss'" >&2; exit 2; }
[[ $seed =~ ^[0-9]+$ ]] || { echo "SEED must be a non-negative integer, got '$seed'" >&2; exit 2; }
[[ $shape =~ ^[0-9]+(,[0-9]+)*$ ]] || { echo "SHAPE must look like 4,3, got '$4'" >&2; exit 2; }
[[ $outputs =~ ^[a-z_]+(,[a-z_]+)*$ ]] || { echo "OUTPUTS must look like loss,gradient" >&2; exit 2; }
[[ $rtol =~ $number && $atol =~ $number ]] || { echo "RTOL and ATOL must be non-negative numbers" >&2; exit 2; }
[[ $visibility =~ ^(visible|hidden|after_due_date|after_published)$ ]] || { echo "bad VISIBILITY" >&2; exit 2; }
outputs_json="[\"${outputs//,/\",\"}\"]"

if [ -n "$JQ" ] && command -v "$JQ" >/dev/null 2>&1; then have_jq=1; else have_jq=0; fi

# A JSON string literal of $1 (backslash, quote and control characters escaped), in plain bash.
json_string() {
  local s=$1
  s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\r'/\\r}; s=${s//$'\t'/\\t}
  printf '"%s"' "$s"
}

# results.json with a score of 0 and one message, for when the service could not grade.
fail_results() {
  printf '{"score": 0, "output": %s, "visibility": "%s", "tests": []}\n' "$(json_string "$1")" "$visibility" \
    >"$results"
}

if [ ! -r "$student" ]; then
  fail_results "Your output file $(basename -- "$student") was not found or cannot be read."
  exit 1
fi

# The submission: with jq, the graded outputs only (the service fails the missing ones); else the whole file.
submission_file=$student
tmpdir=$(mktemp -d) || exit 1
trap 'rm -rf -- "$tmpdir"' EXIT
if [ "$have_jq" = 1 ]; then
  if "$JQ" -c --argjson outs "$outputs_json" \
      'if type == "object" then with_entries(select(.key as $k | $outs | index($k))) else error("not an object") end' \
      "$student" >"$tmpdir/submission.json" 2>/dev/null; then
    submission_file=$tmpdir/submission.json
  fi  # jq could not read it: send it as it is and let the service say what is wrong
fi

prefix='{"loss": "'$loss'", "params": '$params', "exercise": {"seed": '$seed', "shape": ['$shape']}, '
prefix+='"outputs": '$outputs_json', "tolerance": {"rtol": '$rtol', "atol": '$atol'}, '
prefix+='"gradescope": {"visibility": "'$visibility'"}, "submission": '

headers=(-H "Content-Type: application/json")
[ -n "${API_KEY:-}" ] && headers+=(-H "X-API-Key: $API_KEY")

code=$({ printf "%s" "$prefix"; cat -- "$submission_file"; printf '}'; } |
  curl -sS -o "$tmpdir/response.json" -w '%{http_code}' -X POST "${headers[@]}" --data-binary @- \
    "$url/v1/grade?format=gradescope" 2>"$tmpdir/curl.err")

if [ "$code" = 200 ]; then
  cp -- "$tmpdir/response.json" "$results"
  exit 0
fi
if [ "$code" = 000 ] || [ ! -s "$tmpdir/response.json" ]; then
  fail_results "The grading service at $url could not be reached: $(head -c 300 "$tmpdir/curl.err")"
  exit 1
fi
# A problem+json body: its detail says what was wrong (e.g. the output file is not valid JSON).
detail=
if [ "$have_jq" = 1 ]; then
  detail=$("$JQ" -r '.detail // empty' "$tmpdir/response.json" 2>/dev/null)
fi
if [ -z "$detail" ]; then
  detail=$(head -c 2000 "$tmpdir/response.json")
fi
fail_results "Your output could not be graded (HTTP $code): $detail"
exit 1
