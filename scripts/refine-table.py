#!/usr/bin/env python3
"""Refinement rounds on the shipped acronym and sentiment-reversal templates
with the default model: 5 inputs each (with a reference written by hand),
3 rounds, greedy, once per --history mode; prints the tokens decoded per
round with and without prefix reuse and the scores of every pass.

    python3 scripts/refine-table.py [OUT_DIR]   # WHET=… and MODEL=… override the binary and model

Takes about 15 minutes on 2 cores.
"""
import json, subprocess, sys, os
OUT = sys.argv[1] if len(sys.argv) > 1 else '/tmp/whet-refine-table'
os.makedirs(OUT, exist_ok=True)
MODEL=os.environ.get("MODEL", os.path.expanduser("~/.local/share/whet/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
WHET=os.environ.get("WHET", "target/release/whet")
cases = {
 "acronym": [
  ("Underwater breathing without external accessories", "SCUBA: Self-Contained Underwater Breathing Apparatus"),
  ("Light amplification by stimulated emission of radiation", "LASER: Light Amplification by Stimulated Emission of Radiation"),
  ("A system that finds the position of objects with radio waves", "RADAR: RAdio Detection And Ranging"),
  ("A group of nations that defends the North Atlantic together", "NATO: North Atlantic Treaty Organization"),
  ("Graphics processing chip for parallel computing", "GPU: Graphics Processing Unit"),
 ],
 "sentiment-reversal": [
  (None, "The coffee shop was lively and full of happy chatter. My latte was perfectly hot and the blueberry muffin was fresh and soft. The barista got my order exactly right."),
  ("The hotel room was spotless and the bed was wonderfully comfortable. The staff greeted us with warm smiles.", "The hotel room was filthy and the bed was terribly uncomfortable. The staff greeted us with cold stares."),
  ("The movie was boring and far too long. The actors seemed bored and the ending made no sense.", "The movie was gripping and never dragged. The actors were full of energy and the ending was clever."),
  ("The bus was late again and the driver was rude to everyone.", "The bus was right on time and the driver was kind to everyone."),
  ("This phone has a bright screen and the battery lasts all day.", "This phone has a dim screen and the battery dies before lunch."),
 ],
}
rows=[]
for history in ["conversation","fresh"]:
 for template, items in cases.items():
     var = "title" if template=="acronym" else "review"
     for n,(value, ref) in enumerate(items):
         args=[WHET,"refine","--template",template,"--rounds","3","--temp","0","--model",MODEL,"--json","--no-save","--reference",ref,"--history",history]
         if value is not None: args += ["--var", f"{var}={value}"]
         out=subprocess.run(args,capture_output=True,text=True,env={**os.environ,"WHET_DATA_DIR":OUT+"/data"})
         if out.returncode!=0:
             print("FAIL", template, n, out.stderr[-500:]); continue
         r=json.loads(out.stdout)
         rows.append((history,template,n,r))
         print(history, template, n, r["end"], file=sys.stderr)
json.dump(rows, open(OUT+"/results.json","w"))

# ---- the tables
rows=json.load(open(OUT+'/results.json'))
from collections import defaultdict
print("## tokens per round (sum over the 10 inputs)")
agg=defaultdict(lambda: defaultdict(lambda:[0,0,0]))
for hist,t,n,r in rows:
    for i,rt in enumerate(r["token_totals"]["per_round"]):
        a=agg[hist][i]; a[0]+=rt["decoded"]; a[1]+=rt["decoded_without_reuse"]; a[2]+=rt["generations"]
for hist in agg:
    for i in sorted(agg[hist]):
        d,w,g=agg[hist][i]
        print(f"{hist:12} round {i}: generations {g:3}  decoded {d:6}  without reuse {w:6}  saved {100*(1-d/w):.0f}%")
    tot_d=sum(v[0] for v in agg[hist].values()); tot_w=sum(v[1] for v in agg[hist].values())
    print(f"{hist:12} total: decoded {tot_d} without reuse {tot_w} saved {100*(1-tot_d/tot_w):.0f}%")
print()
for hist in ["conversation","fresh"]:
    print(f"## scores per pass ({hist})")
    print("| template | input | end | pass | BLEU | chrF | ROUGE-L | exact | words | text |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for h,t,n,r in rows:
        if h!=hist: continue
        end=r["end"]["kind"]
        for p in r["passes"]:
            s=p["scores"]
            txt=p["text"].strip().replace("\n"," ")[:50].replace("|","/")
            print(f"| {t} | {n+1} | {end} | {p['index']} | {s['bleu']:.1f} | {s['chrf']:.1f} | {s['rouge_l']:.3f} | {'yes' if s['exact_match'] else 'no'} | {s['words']} | {txt} |")
    print()
# summary per template and pass index: mean scores
print("## mean per pass index")
for hist in ["conversation","fresh"]:
    for t in ["acronym","sentiment-reversal"]:
        by=defaultdict(list)
        for h,tt,n,r in rows:
            if h==hist and tt==t:
                for p in r["passes"]:
                    by[p["index"]].append(p["scores"])
        for i in sorted(by):
            L=by[i]
            m=lambda k: sum(x[k] for x in L)/len(L)
            print(f"{hist:12} {t:18} pass {i}: n={len(L)} BLEU {m('bleu'):.1f} chrF {m('chrf'):.1f} ROUGE-L {m('rouge_l'):.3f}")
# how many runs had any pass better than draft in chrF
print()
for hist in ["conversation","fresh"]:
    better=0; total=0; changed=0
    for h,t,n,r in rows:
        if h!=hist: continue
        total+=1
        ps=r["passes"]
        if len(ps)>1 and max(p["scores"]["chrf"] for p in ps[1:])>ps[0]["scores"]["chrf"]: better+=1
        if any(p["text"].strip()!=ps[0]["text"].strip() for p in ps[1:]): changed+=1
    print(f"{hist}: {total} runs; a refined pass beat the draft on chrF in {better}; any pass differed from the draft in {changed}")
