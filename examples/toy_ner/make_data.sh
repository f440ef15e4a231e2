#!/usr/bin/env bash
# Generates the toy named-entity task (train.txt, valid.txt, test.txt next to this script) in
# CoNLL-2003's layout: a -DOCSTART- line, then one "word tag" per line, a blank line after each
# sentence, IOB1 tags (I- inside every entity; B- only where an entity follows one of the same
# type: "told Ann Lee Bo Chen" is I-PER I-PER B-PER I-PER). Checked in as generated; rerun to regenerate (awk
# implementations differ in rand(), so other machines may draw other sentences by the same rules).
#
# A sentence fills a template with persons (first name, optional surname), places (one or two
# words) and organisations (one to three words); some templates put two entities of one type
# side by side ("told Ann Lee Bo Chen" has two PER), and some carry dates with digits, for
# conll_columns' digits: zero. A name can be a word of another type elsewhere ("Jordan" is a
# person and a place), so context matters.
set -euo pipefail
cd "$(dirname "$0")"
gen() {  # gen SEED COUNT FILE
  awk -v seed="$1" -v count="$2" 'BEGIN {
    srand(seed)
    nf = split("Jim Ann Maria Bo Ivan Lena Omar Jordan Grace Kenji Sara Paul", first, " ")
    ns = split("Henson Lee Chen Okafor Petrov Silva Novak Haddad Berg Tanaka", sur, " ")
    nl = split("Paris Berlin Lagos Lima Oslo Jordan Kyoto Madrid New_York San_Francisco Cape_Town Hong_Kong", loc, " ")
    no = split("Acme_Corp Reuters United_Nations Bank_of_Lima Red_Cross Nordic_Steel_Group Orion Apple_Records Lima_Port_Authority", org, " ")
    nt = split("PER_visited_LOC_. ORG_opened_an_office_in_LOC_. PER_works_for_ORG_in_LOC_. PER_and_PER_met_in_LOC_on_DATE_. the_mayor_of_LOC_said_ORG_will_grow_. PER_told_PER_PER_about_ORG_. ORG_and_ORG_ORG_signed_a_deal_on_DATE_. he_flew_from_LOC_to_LOC_LOC_. shares_of_ORG_rose_DAYS_percent_. PER_left_ORG_last_year_.", tmpl, " ")
    split("January March May July October December", month, " ")
    print "-DOCSTART- O"; print ""
    for (i = 0; i < count; i++) {
      nw = split(tmpl[int(rand() * nt) + 1], w, "_")
      prev = ""
      for (k = 1; k <= nw; k++) {
        t = w[k]
        if (t == "PER") { e = first[int(rand() * nf) + 1]; if (rand() < 0.6) e = e "_" sur[int(rand() * ns) + 1] }
        else if (t == "LOC") e = loc[int(rand() * nl) + 1]
        else if (t == "ORG") e = org[int(rand() * no) + 1]
        else if (t == "DATE") { print int(rand() * 28) + 1 " O"; print month[int(rand() * 6) + 1] " O"; print 1990 + int(rand() * 30) " O"; prev = ""; continue }
        else if (t == "DAYS") { print int(rand() * 20) + 1 " O"; prev = ""; continue }
        else { print t " O"; prev = ""; continue }
        m = split(e, p, "_")
        for (j = 1; j <= m; j++) print p[j] " " ((j == 1 && prev == t) ? "B-" : "I-") t
        prev = t
      }
      print ""
    }
  }' > "$3"
}
gen 21 1200 train.txt
gen 22 200 valid.txt
gen 23 200 test.txt
