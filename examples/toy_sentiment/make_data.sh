#!/usr/bin/env bash
# Generates the toy sentiment task (train.tsv, valid.tsv, test.tsv next to this script), checked
# in as generated; rerun to regenerate (awk implementations differ in rand(), so other machines
# may draw other sentences with the same rules).
#
# A sentence is one clause, or two joined by "but"; a clause is "<det> <noun> <verb> [not]
# [<adverb>] <adjective>". Its polarity is the adjective's, flipped by "not"; with "but" the
# second clause decides. Bag-of-words models cannot solve it (the same words appear in both
# classes); a recurrent model reading the order can.
set -euo pipefail
cd "$(dirname "$0")"
gen() {  # gen SEED COUNT FILE
  awk -v seed="$1" -v count="$2" 'BEGIN {
    srand(seed)
    split("the a this that", det, " ")
    split("movie film plot story cast ending script acting music scene", noun, " ")
    split("was is seemed felt looked", verb, " ")
    split("really very quite rather truly", adv, " ")
    split("good great wonderful fun charming clever moving", pos, " ")
    split("bad awful boring dull weak clumsy tedious", neg, " ")
    print "sentence\tlabel"
    for (i = 0; i < count; i++) {
      n = rand() < 0.5 ? 1 : 2
      s = ""; label = 0
      for (k = 1; k <= n; k++) {
        c = det[int(rand() * 4) + 1] " " noun[int(rand() * 10) + 1] " " verb[int(rand() * 5) + 1]
        notp = rand() < 0.4
        if (notp) c = c " not"
        if (rand() < 0.5) c = c " " adv[int(rand() * 5) + 1]
        good = rand() < 0.5
        c = c " " (good ? pos[int(rand() * 7) + 1] : neg[int(rand() * 7) + 1])
        label = (good != notp) ? 1 : 0
        s = (k == 1) ? c : s " but " c
      }
      print s "\t" label
    }
  }' > "$3"
}
gen 11 2000 train.tsv
gen 12 300 valid.tsv
gen 13 300 test.tsv
