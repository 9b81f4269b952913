import torch, time
from bench.feedback import *
from bench.feedback import _data
setup_threads(2)
rs = [Ours(), Lucidrains(), LabmlNN()]
s = interleaved({r.name: r.train_step for r in rs}, rounds=3, warmup=1)
print({k: TOKENS_PER_STEP/median(v) for k,v in s.items()})
p = _data()[:, :32]
s = interleaved({r.name: (lambda r=r: r.generate(p, 32)) for r in rs[:2]}, rounds=3, warmup=1)
print({k: 256/median(v) for k,v in s.items()})
