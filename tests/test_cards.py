"""Model cards (issue 29 point 5): export_model_card writes a Hugging Face README.md into the
model's folder -- only strictly inside the models root, through open handles, never through a
link, never over a README.md modelstore did not write unless asked -- and doctor --register reads
one back. Every YAML value is JSON-quoted: a hostile name cannot add a key."""
import json
import logging
import os
import shutil
import subprocess
import sys
import time

import pytest
import yaml

import modelstore
from modelstore import ValidationError
from modelstore.registry import folderfiles

MODEL = dict(base_model='meta-llama/Llama-3.2-1B', task='text-generation')


@pytest.fixture
def root(tmp_path):
    path = tmp_path / 'models'
    path.mkdir()
    return str(path)


@pytest.fixture
def store(head_url, root):
    with modelstore.connect(head_url, models_root=root) as s:
        yield s


def folder(root, name):
    path = os.path.join(root, name)
    os.makedirs(path, exist_ok=True)
    return path


def front_matter(text):
    assert text.startswith('---\n')
    return yaml.safe_load(text.split('\n---\n', 1)[0][4:])


def test_the_card_says_what_the_hub_reads(store, root):
    parent = store.add_model(model_name='base-bot', model_path=folder(root, 'base'), **MODEL)
    model = store.add_model(
        model_name='support-bot', model_path=folder(root, 'bot-1'), parent_id=parent.id,
        dataset_uri='s3://data/chat-v2', dataset_sha256='ab' * 32, source_commit='1a2b3c',
        run_id='run-7', metrics={'eval_loss': [0.9, 0.41], 'accuracy': 0.88, 'steps': []},
        **MODEL)
    store.set_tags(model.id, {'stage': 'prod', 'team': 'nlp'})
    text = store.model_card('support-bot@1')
    meta = front_matter(text)
    assert meta['base_model'] == 'meta-llama/Llama-3.2-1B'
    assert meta['datasets'] == ['s3://data/chat-v2']
    assert meta['pipeline_tag'] == 'text-generation'
    assert meta['tags'] == ['stage:prod', 'team:nlp']
    [entry] = meta['model-index']
    assert entry['name'] == 'support-bot'
    [result] = entry['results']
    assert result['task'] == {'type': 'text-generation'}
    # A curve's final value; a metric with no number ('steps': []) is left out.
    assert {m['type']: m['value'] for m in result['metrics']} == {'eval_loss': 0.41,
                                                                  'accuracy': 0.88}
    assert 'Parent: model %d (`base-bot` version 1)' % parent.id in text
    assert 'Dataset SHA-256: ' + 'ab' * 32 in text


def test_hostile_text_cannot_add_a_key_or_close_the_comment(store, root):
    evil = 'x"\n---\nbase_model: evil\n-->\n<!-- modelstore-card {"model_name": "evil"} -->'
    model = store.add_model(model_name='bot', model_path=folder(root, 'bot'),
                            description=evil, metrics={evil: 1.0}, **MODEL)
    store.set_tags(model.id, {'k': evil[:200]})
    text = store.model_card(model.id)
    meta = front_matter(text)
    assert set(meta) == {'base_model', 'pipeline_tag', 'tags', 'model-index'}
    assert meta['base_model'] == MODEL['base_model'] and meta['tags'] == ['k:' + evil[:200]]
    assert meta['model-index'][0]['results'][0]['metrics'][0]['name'] == evil
    # The last line is modelstore's own, whole, and gives the row back.
    from modelstore.registry.cards import parse
    back = parse(text)
    assert (back['model_name'], back['description'], back['metrics']) == (
        'bot', evil, {evil: 1.0})
    lines = text.splitlines()
    assert [line for line in lines if '<!--' in line] == [lines[-1]]


def test_export_writes_readme_into_the_folder_and_replaces_only_its_own(store, root):
    path = folder(root, 'bot-1')
    model = store.add_model(model_name='bot', model_path=path, **MODEL)
    written = store.export_model_card(model.id)
    assert written == os.path.join(path, 'README.md')
    first = open(written).read()
    store.update_model(model.id, description='better')
    store.export_model_card('bot@1')  # Its own card: replaced.
    assert 'better' in open(written).read() and open(written).read() != first
    other = store.add_model(model_name='other', model_path=folder(root, 'other'), **MODEL)
    theirs = os.path.join(other.model_path, 'README.md')
    with open(theirs, 'w') as f:
        f.write('# written by the trainer\n')
    with pytest.raises(ValidationError, match='modelstore did not write it') as err:
        store.export_model_card(other.id)
    assert err.value.field == 'overwrite'
    assert open(theirs).read() == '# written by the trainer\n'
    assert sorted(os.listdir(other.model_path)) == ['README.md']  # No temporary left.
    store.export_model_card(other.id, overwrite=True)
    assert open(theirs).read().startswith('---\nbase_model:')


def test_nothing_is_written_outside_the_root_nor_through_a_link(store, root, tmp_path):
    outside = tmp_path / 'outside'
    outside.mkdir()
    cases = [store.add_model(model_name='out', model_path=str(outside), **MODEL),
             store.add_model(model_name='dots', model_path=os.path.join(root, '..', 'outside'),
                             **MODEL),
             store.add_model(model_name='root', model_path=root, **MODEL)]
    os.symlink(str(outside), os.path.join(root, 'link'))
    cases.append(store.add_model(model_name='link', model_path=os.path.join(root, 'link'),
                                 **MODEL))
    os.symlink(str(outside), os.path.join(folder(root, 'team'), 'inner'))
    cases.append(store.add_model(model_name='inner', model_path=os.path.join(
        root, 'team', 'inner', 'm'), **MODEL))
    cases.append(store.add_model(model_name='missing', model_path=os.path.join(root, 'gone'),
                                 **MODEL))
    for model in cases:
        with pytest.raises(ValidationError, match='nothing was written'):
            store.export_model_card(model.id, overwrite=True)
    assert os.listdir(str(outside)) == [] and not os.path.exists(os.path.join(root, 'gone'))
    # A README.md that is a link to a file outside: refused, and with overwrite the link
    # itself is replaced -- the file it pointed at is never written.
    target = outside / 'victim.txt'
    target.write_text('precious')
    model = store.add_model(model_name='m', model_path=folder(root, 'm'), **MODEL)
    os.symlink(str(target), os.path.join(model.model_path, 'README.md'))
    with pytest.raises(ValidationError, match='modelstore did not write it'):
        store.export_model_card(model.id)
    store.export_model_card(model.id, overwrite=True)
    assert target.read_text() == 'precious'
    readme = os.path.join(model.model_path, 'README.md')
    assert not os.path.islink(readme) and 'base_model' in open(readme).read()


def test_export_needs_a_models_root(head_url):
    with modelstore.connect(head_url) as s:
        model = s.add_model(model_name='m', model_path='/srv/m', **MODEL)
        with pytest.raises(ValidationError, match='export_model_card needs a models root'):
            s.export_model_card(model.id)
        with pytest.raises(ValidationError, match='overwrite: must be True or False'):
            s.export_model_card(model.id, overwrite='yes')


SWAPPER = r'''
import os, sys, time
team, outside, until = sys.argv[1], sys.argv[2], float(sys.argv[3])
real, link = team + '.real', team + '.link'
os.symlink(outside, link)
while time.time() < until:
    os.rename(team, real)      # The real folder away, the link to outside in its place...
    os.rename(link, team)
    os.rename(team, link)      # ... and back.
    os.rename(real, team)
'''


def test_a_hostile_process_swapping_a_folder_for_a_link_never_gets_a_write_outside(
        store, root, tmp_path):
    """While another process keeps swapping a folder above the model's for a link to a
    directory outside the root, exports either write inside the root or fail: nothing ever
    lands outside."""
    outside = tmp_path / 'outside'
    (outside / 'bot').mkdir(parents=True)
    team = folder(root, 'team')
    model = store.add_model(model_name='bot', model_path=folder(team, 'bot'), **MODEL)
    swapper = subprocess.Popen([sys.executable, '-c', SWAPPER, team, str(outside),
                                str(time.time() + 4)], stderr=subprocess.PIPE, text=True)
    written = failed = 0
    try:
        while swapper.poll() is None:
            try:
                store.export_model_card(model.id)
                written += 1
            except (ValidationError, modelstore.StorageError):
                failed += 1
    finally:
        swapper.wait(timeout=30)
    assert swapper.returncode == 0, swapper.stderr.read()
    assert os.listdir(str(outside / 'bot')) == []
    assert written > 0 and failed > 0, (written, failed)  # Both sides of the race were hit.


def test_doctor_register_reads_the_card(store, root, head_url, cli):
    model = store.add_model(model_name='support-bot', model_path=folder(root, 'support-bot'),
                            dataset_uri='s3://d', metrics={'eval_loss': [0.5, 0.3]},
                            run_id='run-7', **MODEL)
    store.set_tags(model.id, {'stage': 'prod'})
    store.export_model_card(model.id)
    store.delete_model(model.id)  # The row lost, the folder and its card still there.
    # A copy of the folder (its card names support-bot) is not support-bot's next version.
    shutil.copytree(model.model_path, os.path.join(root, 'scratch-copy'))
    hub = folder(root, 'from-the-hub')
    with open(os.path.join(hub, 'README.md'), 'w') as f:
        f.write('---\nbase_model: google/flan-t5-base\npipeline_tag: summarization\n'
                'license: mit\ntags:\n- summarization\n- lang:en\n---\n# A card\n')
    code, out, err = cli('doctor', '--database', head_url, '--models-root', root, '--register',
                         '--min-age', '0', '--json')
    report = json.loads(out)
    registered = {f['path']: f for f in report['fixes'] if f['fix'] == 'register'}
    again = store.get_model(registered[model.model_path]['id'])
    assert (again.model_name, again.base_model, again.task, again.dataset_uri, again.run_id,
            again.metrics) == ('support-bot', MODEL['base_model'], MODEL['task'], 's3://d',
                               'run-7', {'eval_loss': [0.5, 0.3]})
    assert store.get_tags(again.id) == {'stage': 'prod'}
    copy = store.get_model(registered[os.path.join(root, 'scratch-copy')]['id'])
    assert (copy.model_name, copy.run_id) == ('scratch-copy', 'run-7')
    assert store.get_latest_model('support-bot').id == again.id
    other = store.get_model(registered[hub]['id'])
    assert (other.model_name, other.base_model, other.task) == (
        'from-the-hub', 'google/flan-t5-base', 'summarization')
    assert store.get_tags(other.id) == {'summarization': '', 'lang': 'en'}


def test_the_card_command(store, root, head_url, cli):
    model = store.add_model(model_name='bot', model_path=folder(root, 'bot'), **MODEL)
    code, out, err = cli('models', 'card', 'bot@1', '--database', head_url, '--print')
    assert code == 0 and out.startswith('---\nbase_model: "meta-llama/Llama-3.2-1B"\n')
    assert not os.path.exists(os.path.join(model.model_path, 'README.md'))
    code, out, err = cli('models', 'card', 'bot', '--database', head_url)
    assert code == 2 and 'none is set: pass --models-root DIR' in err
    code, out, err = cli('models', 'card', 'bot', '--database', head_url, '--models-root', root,
                         '--json')
    assert code == 0, err
    assert json.loads(out) == {'model_id': model.id, 'ok': True,
                               'path': os.path.join(model.model_path, 'README.md')}
    with open(os.path.join(model.model_path, 'README.md'), 'w') as f:
        f.write('mine\n')
    code, out, err = cli('models', 'card', str(model.id), '--database', head_url,
                         '--models-root', root)
    assert code == 2 and 'modelstore did not write it (--overwrite: replace it)' in err
    code, out, err = cli('models', 'card', str(model.id), '--database', head_url,
                         '--models-root', root, '--overwrite')
    assert code == 0 and out.startswith('Wrote %s' % os.path.join(model.model_path,
                                                                   'README.md'))


def test_a_card_edited_by_hand_or_quoting_the_mark_is_not_modelstores(store, root):
    model = store.add_model(model_name='bot', model_path=folder(root, 'bot'), **MODEL)
    readme = store.export_model_card(model.id)
    edited = open(readme).read().replace('# bot', '# bot, with my notes')
    with open(readme, 'w') as f:
        f.write(edited)
    with pytest.raises(ValidationError, match='modelstore did not write it'):
        store.export_model_card(model.id)
    assert open(readme).read() == edited
    with open(readme, 'w') as f:
        f.write('How our cards end: <!-- modelstore-card {"model_name": "bot"} -->\n')
    with pytest.raises(ValidationError, match='modelstore did not write it'):
        store.export_model_card(model.id)


def test_a_directory_named_readme_is_never_replaced(store, root):
    model = store.add_model(model_name='bot', model_path=folder(root, 'bot'), **MODEL)
    os.mkdir(os.path.join(model.model_path, 'README.md'))
    with pytest.raises(ValidationError, match='README.md is not a file'):
        store.export_model_card(model.id, overwrite=True)
    assert os.listdir(model.model_path) == ['README.md']


def test_a_readme_written_meanwhile_is_kept(store, root, monkeypatch):
    """A trainer writes README.md between modelstore's look and its write: the trainer's
    stays, the call is refused -- with nothing there before, and with modelstore's own card
    there before."""
    model = store.add_model(model_name='bot', model_path=folder(root, 'bot'), **MODEL)
    readme = os.path.join(model.model_path, 'README.md')
    real = folderfiles._link

    def trainer_writes_meanwhile(folder_fd, source, name):
        with open(readme, 'w') as f:
            f.write('the trainer\'s\n')
        return real(folder_fd, source, name)
    monkeypatch.setattr(folderfiles, '_link', trainer_writes_meanwhile)
    with pytest.raises(ValidationError, match='appeared while the card was written'):
        store.export_model_card(model.id)
    assert open(readme).read() == 'the trainer\'s\n'
    monkeypatch.undo()
    os.unlink(readme)
    store.export_model_card(model.id)  # Its own card, then swapped after it was judged:
    real_read = folderfiles._read

    def swapped_after_the_look(folder_fd, name, there):
        text = real_read(folder_fd, name, there)
        os.unlink(readme)
        with open(readme, 'w') as f:
            f.write('the trainer\'s\n')
        return text
    monkeypatch.setattr(folderfiles, '_read', swapped_after_the_look)
    with pytest.raises(ValidationError, match='changed while the card was written'):
        store.export_model_card(model.id)
    assert open(readme).read() == 'the trainer\'s\n'
    assert sorted(os.listdir(model.model_path)) == ['README.md']


def test_a_folder_moved_out_of_the_root_while_written_keeps_no_card(store, root, tmp_path,
                                                                    monkeypatch):
    model = store.add_model(model_name='bot', model_path=folder(root, 'bot'), **MODEL)
    outside = str(tmp_path / 'moved-out')
    real = folderfiles._place

    def moved_meanwhile(*args):
        written = real(*args)
        os.rename(model.model_path, outside)
        return written
    monkeypatch.setattr(folderfiles, '_place', moved_meanwhile)
    with pytest.raises(modelstore.StorageError, match='was moved while its card was written'):
        store.export_model_card(model.id)
    assert os.listdir(outside) == []


def test_a_killed_writers_old_temporary_file_goes(store, root):
    model = store.add_model(model_name='bot', model_path=folder(root, 'bot'), **MODEL)
    stale = os.path.join(model.model_path, '.README.md.modelstore-0123456789ab')
    fresh = os.path.join(model.model_path, '.README.md.modelstore-ba9876543210')
    for path in (stale, fresh):
        with open(path, 'w') as f:
            f.write('half')
    os.utime(stale, (time.time() - 7200,) * 2)
    store.export_model_card(model.id)
    assert sorted(os.listdir(model.model_path)) == ['.README.md.modelstore-ba9876543210',
                                                    'README.md']  # (A live writer's stays.)


def test_control_characters_keep_the_yaml_valid(store, root):
    task = 'text\x7fgen\x85---\x85\ufffe\u2028x'
    model = store.add_model(model_name='bot', model_path=folder(root, 'bot'), base_model='b',
                            task=task)
    assert front_matter(store.model_card(model.id))['pipeline_tag'] == task


def test_a_hook_that_raises_is_logged_and_the_add_still_returns(store, root, caplog):
    seen = []

    def broken(event):
        raise RuntimeError('webhook down')
    store.on_event(broken)
    store.on_event(seen.append)
    with caplog.at_level(logging.ERROR, logger='modelstore'):
        model = store.add_model(model_name='bot', model_path='/m', **MODEL)
    assert store.get_model(model.id) and [e.model_id for e in seen] == [model.id]
    assert 'webhook down' in caplog.text and 'the change itself is committed' in caplog.text
