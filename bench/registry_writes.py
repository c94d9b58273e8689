"""The registry's write path in CPU time (process_time, so other load on the machine counts
less): add_models of 200,000 plain rows and of 50,000 rows with training metadata, 5,000
add_model calls, 2,000 with metrics. A SQLite file on /dev/shm, so the disk is not measured.

    .venv/bin/python bench/registry_writes.py            # prints one JSON line

Run it alternately with two installs to compare them (docs/performance.md, issue 27).
"""
import time, tempfile, os, sys, statistics, json
import modelstore
d = tempfile.mkdtemp(dir='/dev/shm')
s = modelstore.connect('sqlite:///' + os.path.join(d, 'r%d.db' % os.getpid()), auto_migrate=True)
rows = [dict(model_name='m%d' % (i % 5000), base_model='b', task='t', model_path='/p/%d' % i) for i in range(200000)]
meta = [dict(r, training_seconds=1.5, strategy='sft', metrics={'loss': [0.5, 0.4]}) for r in rows[:50000]]
out = {}
t = time.process_time(); s.add_models(rows); out['bulk200k'] = time.process_time() - t
t = time.process_time(); s.add_models(meta); out['bulk50k_meta'] = time.process_time() - t
t = time.process_time()
for i in range(5000): s.add_model(model_name='x%d' % (i % 50), base_model='b', task='t', model_path='/q')
out['add_model_us'] = (time.process_time() - t) / 5000 * 1e6
t = time.process_time()
for i in range(2000): s.add_model(model_name='y', base_model='b', task='t', model_path='/q', metrics={'a': 1.0})
out['add_model_meta_us'] = (time.process_time() - t) / 2000 * 1e6
print(json.dumps(out))
import shutil; shutil.rmtree(d)
