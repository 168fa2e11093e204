"""The container files in docker/ (docker/README.md).

There is no Docker engine here nor in CI, so: the Kubernetes manifests and
compose.yaml validate against their schemas, the Dockerfile parses and says
what it should, and the image's steps run outside Docker: docker/build.sh
(the builder stage) lays out the files as the image has them, and the
image's ENTRYPOINT + CMD, run from that layout as a non-root user, serves
the example app, logs to stdout and stderr, and on SIGTERM exits 0 within
seconds leaving no process behind.

The schema and Dockerfile tools come from PyPI into a venv
(scripts/ci-tools.sh, run by scripts/deps.sh --tests); without them these
tests skip, and fail under CI (CI=true).
"""
import http.client
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from harness import PYTHON, ROOT, free_port

DOCKER = os.path.join(ROOT, 'docker')
K8S = os.path.join(DOCKER, 'k8s')
CI_TOOLS = os.path.join(ROOT, os.environ.get('WSGI_RS_CI_TOOLS', os.path.join('target', 'ci-tools')))
CLI = os.path.join(ROOT, 'target', 'release', 'mod_wsgi_rs')
# Kubernetes versions the manifests must be valid for: an old one still
# around, and the newest kubernetes-validate knows.
K8S_VERSIONS = ('1.27', None)


def tool(name):
    path = os.path.join(CI_TOOLS, 'bin', name)
    if not os.access(path, os.X_OK):
        msg = 'no %s in %s/bin: run scripts/deps.sh --tests (scripts/ci-tools.sh)' % (name, CI_TOOLS)
        if os.environ.get('CI') == 'true':
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def venv_json(code, *args):
    """Runs `code` with the tools' Python; it prints JSON, returned decoded."""
    out = subprocess.run([tool('python'), '-c', code, *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def load_yaml(path):
    return venv_json('import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))',
                     path)


# --- Kubernetes -----------------------------------------------------------

def k8s_docs():
    docs = []
    for name in sorted(os.listdir(K8S)):
        if name.endswith(('.yaml', '.yml')):
            docs += [d for d in load_yaml(os.path.join(K8S, name)) if d]
    return {d['kind']: d for d in docs}


def test_k8s_manifests_validate():
    files = sorted(os.path.join(K8S, f) for f in os.listdir(K8S) if f.endswith(('.yaml', '.yml')))
    assert files
    for version in K8S_VERSIONS:
        cmd = [tool('kubernetes-validate'), '--strict'] + (['-k', version] if version else []) + files
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, (version, out.stdout, out.stderr)
        assert out.stdout.count('passed') >= len(files), out.stdout


def test_k8s_deployment_service_and_probes_fit_the_image():
    docs = k8s_docs()
    dep, svc = docs['Deployment'], docs['Service']
    spec = dep['spec']
    pod = spec['template']['spec']
    labels = spec['template']['metadata']['labels']
    assert spec['replicas'] >= 2
    assert spec['selector']['matchLabels'].items() <= labels.items()
    assert svc['spec']['selector'].items() <= labels.items()
    (c,) = pod['containers']
    # Non-root, as the image's USER.
    uid = int(dockerfile()['runtime']['USER'][-1].split(':')[0])
    assert pod['securityContext']['runAsNonRoot'] is True
    assert pod['securityContext'].get('runAsUser', uid) == uid != 0
    assert c['securityContext']['allowPrivilegeEscalation'] is False
    # The server root is under /tmp: writable even with a read-only root filesystem.
    if c['securityContext'].get('readOnlyRootFilesystem'):
        assert '/tmp' in [m['mountPath'] for m in c.get('volumeMounts', [])]
    # Requests and limits for CPU and memory.
    for kind in ('requests', 'limits'):
        assert {'cpu', 'memory'} <= set(c['resources'][kind]), c['resources']
    # The port is the one the image serves on; probes ask /healthz there.
    port = image_port()
    ports = {p.get('name'): p['containerPort'] for p in c['ports']}
    assert port in ports.values()
    for probe in ('readinessProbe', 'livenessProbe'):
        get = c[probe]['httpGet']
        assert get['path'] == '/healthz'
        assert ports.get(get['port'], get['port']) == port, (probe, get)
    (sp,) = svc['spec']['ports']
    assert ports.get(sp['targetPort'], sp['targetPort']) == port
    # The grace period covers the preStop pause plus a graceful stop.
    pre_stop = c.get('lifecycle', {}).get('preStop', {}).get('exec', {}).get('command', [])
    pause = int(pre_stop[-1]) if pre_stop[:1] == ['sleep'] else 0
    assert pod['terminationGracePeriodSeconds'] >= pause + 15, (pause, pod['terminationGracePeriodSeconds'])
    if 'PodDisruptionBudget' in docs:
        assert docs['PodDisruptionBudget']['spec']['selector']['matchLabels'].items() <= labels.items()


# --- compose ----------------------------------------------------------------

def test_compose_validates_and_serves_the_example_on_loopback():
    path = os.path.join(DOCKER, 'compose.yaml')
    out = subprocess.run([tool('check-jsonschema'), '--builtin-schema', 'vendor.compose-spec', path],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    (doc,) = load_yaml(path)
    assert set(doc['services']) == {'web', 'prometheus', 'grafana'}
    svc = doc['services']['web']
    build = svc['build']
    context = os.path.normpath(os.path.join(DOCKER, build['context']))
    assert context == ROOT
    assert os.path.isfile(os.path.join(context, build['dockerfile']))
    assert svc['ports'] == ['127.0.0.1:%d:%d' % (image_port(), image_port())]
    test = svc['healthcheck']['test']
    assert test[0] == 'CMD' and any('/healthz' in t for t in test), test
    assert any(':%d/' % image_port() in t for t in test), test


# --- metrics: Prometheus and Grafana -----------------------------------------

GRAFANA = os.path.join(DOCKER, 'grafana')
DASHBOARD = os.path.join(GRAFANA, 'dashboards', 'mod_wsgi_rs.json')


def test_compose_web_serves_metrics_prometheus_scrapes_them_grafana_shows_them():
    (doc,) = load_yaml(os.path.join(DOCKER, 'compose.yaml'))
    svcs = doc['services']
    web = svcs['web']
    # The image's CMD (the script), after --server-metrics.
    assert web['command'] == ['--server-metrics'] + exec_form(dockerfile()['runtime']['CMD'][-1])
    for name, port in (('prometheus', 9090), ('grafana', 3000)):
        assert svcs[name]['ports'] == ['127.0.0.1:%d:%d' % (port, port)], name
        for v in svcs[name]['volumes']:
            host = os.path.normpath(os.path.join(DOCKER, v.split(':')[0]))
            assert os.path.exists(host), v
    (prom,) = load_yaml(os.path.join(DOCKER, 'prometheus', 'prometheus.yml'))
    (job,) = prom['scrape_configs']
    assert job['metrics_path'] == '/server-metrics'
    assert job['static_configs'][0]['targets'] == ['web:%d' % image_port()]
    (ds,) = load_yaml(os.path.join(GRAFANA, 'provisioning', 'datasources', 'prometheus.yaml'))
    (source,) = ds['datasources']
    assert source['type'] == 'prometheus' and source['url'] == 'http://prometheus:9090'
    (prov,) = load_yaml(os.path.join(GRAFANA, 'provisioning', 'dashboards', 'mod_wsgi_rs.yaml'))
    mounts = dict(v.split(':')[:2] for v in svcs['grafana']['volumes'])
    assert mounts['./grafana/dashboards'] == prov['providers'][0]['options']['path']
    uids = {t['datasource']['uid'] for p in json.load(open(DASHBOARD))['panels'] for t in p['targets']}
    assert uids == {source['uid']}


def emitted_metric_names():
    """The sample names the module's /server-metrics serves (embedded and
    daemon requests made first, so that every family has samples)."""
    from harness import Apache
    conf = ('WSGIDaemonProcess g processes=1 threads=2\n'
            'WSGIScriptAlias /d @APPS@/daemon.wsgi process-group=g\n'
            'WSGIScriptAlias /e @APPS@/daemon.wsgi process-group=%{GLOBAL}\n'
            '<Location /server-metrics>\nSetHandler wsgi-rs-metrics\nRequire ip 127.0.0.1\n</Location>\n')
    a = Apache(conf=conf, name='dashboard')
    a.start()
    try:
        assert a.get('/d/info').status == 200 and a.get('/e/info').status == 200
        time.sleep(0.3)
        text = a.get('/server-metrics').body.decode()
    finally:
        a.stop()
        a.cleanup()
    return {line.split('{')[0].split()[0] for line in text.splitlines() if line and not line.startswith('#')}


def test_dashboard_parses_and_queries_only_metrics_the_module_emits():
    with open(DASHBOARD) as f:
        dash = json.load(f)
    assert dash['uid'] and dash['title'] and dash['panels']
    exprs = [t['expr'] for p in dash['panels'] for t in p['targets']]
    queried = {m for e in exprs for m in re.findall(r'\bwsgi_rs_[a-z_]+', e)}
    assert len(queried) >= 10, queried
    emitted = emitted_metric_names()
    assert queried <= emitted, queried - emitted
    # Each panel's ids are unique and its layout is on the 24-column grid.
    assert len({p['id'] for p in dash['panels']}) == len(dash['panels'])
    assert all(p['gridPos']['x'] + p['gridPos']['w'] <= 24 for p in dash['panels'])


# --- the Dockerfile --------------------------------------------------------

_DOCKERFILE = {}


def dockerfile():
    """The Dockerfile's two stages: {'builder': {...}, 'runtime': {...}},
    each with 'from', 'name', 'steps' [(INSTRUCTION, value)] and each
    instruction's values by name."""
    if not _DOCKERFILE:
        structure = venv_json('import json, sys\n'
                              'from dockerfile_parse import DockerfileParser\n'
                              'print(json.dumps(DockerfileParser(path=sys.argv[1]).structure))',
                              os.path.join(DOCKER, 'Dockerfile'))
        stages = []
        for ins in structure:
            if ins['instruction'] == 'COMMENT':
                continue
            if ins['instruction'] == 'FROM':
                words = ins['value'].split()
                name = words[2] if len(words) == 3 and words[1].lower() == 'as' else None
                stages.append({'from': words[0], 'name': name, 'steps': []})
                continue
            assert stages, 'an instruction before FROM: %r' % ins
            stage = stages[-1]
            stage['steps'].append((ins['instruction'], ins['value']))
            stage.setdefault(ins['instruction'], []).append(ins['value'])
        assert len(stages) == 2, [s['from'] for s in stages]
        _DOCKERFILE.update(builder=stages[0], runtime=stages[1])
    return _DOCKERFILE


def exec_form(value):
    assert value.lstrip().startswith('['), 'not in exec form: %s' % value
    argv = json.loads(value)
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)
    return argv


def image_argv():
    rt = dockerfile()['runtime']
    return exec_form(rt['ENTRYPOINT'][-1]) + exec_form(rt.get('CMD', ['[]'])[-1])


def option(argv, name):
    assert argv.count(name) == 1, (name, argv)
    return argv[argv.index(name) + 1]


def image_port():
    return int(option(image_argv(), '--port'))


def test_dockerfile_stages_user_signal_and_command():
    df = dockerfile()
    builder, rt = df['builder'], df['runtime']
    assert builder['name'] and builder['from'].startswith('rust:') and 'bookworm' in builder['from']
    assert rt['from'] == 'debian:bookworm-slim'
    # Non-root, numerically (Kubernetes' runAsNonRoot checks a number).
    user = rt['USER'][-1]
    assert re.fullmatch(r'\d+(:\d+)?', user) and int(user.split(':')[0]) != 0, user
    assert rt['STOPSIGNAL'] == ['SIGTERM']
    argv = image_argv()
    assert argv[:2] == ['/usr/local/bin/mod_wsgi_rs', 'serve'], argv
    assert option(argv, '--host') == '0.0.0.0'
    assert '--log-to-terminal' in argv and '--access-log' in argv
    assert rt['EXPOSE'] == [str(image_port())]
    assert '/app/app.wsgi' in argv
    # The runtime stage takes the builder's output.
    assert any(k == 'COPY' and v.split()[0] == '--from=%s' % builder['name'] for k, v in rt['steps'])
    # The runtime user is the one runtime-setup.sh makes.
    with open(os.path.join(DOCKER, 'runtime-setup.sh')) as f:
        assert 'APP_UID:-%s}' % user.split(':')[0] in f.read()


def test_dockerfile_runs_and_copies_files_that_exist():
    scripts = set()
    for stage in dockerfile().values():
        for kind, value in stage['steps']:
            if kind == 'RUN':
                found = re.findall(r'(?:^|[\s=/])((?:docker|scripts)/[\w.-]+\.sh)\b', value)
                assert found, 'a RUN without a script of docker/ or scripts/: %s' % value
                scripts.update(found)
            elif kind == 'COPY':
                words = [w for w in value.split() if not w.startswith('--')]
                if not value.startswith('--from='):
                    for src in words[:-1]:
                        assert os.path.exists(os.path.join(ROOT, src)), src
    assert {'docker/build.sh', 'docker/runtime-setup.sh'} <= scripts, scripts
    for s in scripts:
        path = os.path.join(ROOT, s)
        assert os.access(path, os.X_OK), s
        out = subprocess.run(['sh', '-n', path], capture_output=True, text=True)
        assert out.returncode == 0, (s, out.stderr)
    # What the image needs is not left out of the build context.
    with open(os.path.join(ROOT, '.dockerignore')) as f:
        ignored = [l.strip().strip('/') for l in f if l.strip() and not l.startswith('#')]
    for needed in ('.cargo', 'Cargo.lock', 'src', 'c_shim', 'docker', 'scripts', 'apache'):
        assert needed not in ignored, needed
    assert 'target' in ignored and '.git' in ignored


# --- the image's steps, outside Docker --------------------------------------

def needs_cli():
    with open(os.path.join(ROOT, 'Cargo.toml')) as f:
        if not re.search(r'^\[\[bin\]\]\s*\nname\s*=\s*"mod_wsgi_rs"', f.read(), re.M):
            pytest.skip('this checkout has no mod_wsgi_rs command (no [[bin]] in Cargo.toml)')
    assert os.path.exists(CLI), 'no %s: cargo build --release' % CLI
    if os.path.realpath(PYTHON) != os.path.realpath('/usr/bin/python3'):
        pytest.skip("the image's module links Debian's python3; scripts/test.sh runs this with it")


@pytest.fixture(scope='module')
def image_root():
    """A directory laid out as the runtime image: docker/build.sh's output
    plus the runtime stage's COPYs, and a /tmp anyone can write to. Mode
    0755 throughout, so a non-root user can read it."""
    needs_cli()
    df = dockerfile()
    runs = ' '.join(v for k, v in df['builder']['steps'] if k == 'RUN')
    m = re.search(r'(\S*docker/build\.sh)\s+(\S+)\s+(\S+)', runs)
    assert m, runs
    src, out = m.group(2), m.group(3)
    base = tempfile.mkdtemp(prefix='wsgi-rs-image-')
    os.chmod(base, 0o755)
    root = os.path.join(base, 'root')
    built = os.path.join(base, out.strip('/'))
    try:
        os.mkdir(root, 0o755)
        # The builder stage: its source dir is this checkout.
        assert src == '/src', src
        proc = subprocess.run([os.path.join(DOCKER, 'build.sh'), ROOT, built],
                              capture_output=True, text=True, timeout=3600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for kind, value in df['runtime']['steps']:
            if kind != 'COPY':
                continue
            words = value.split()
            flags = [w for w in words if w.startswith('--')]
            (s, d) = [w for w in words if not w.startswith('--')]
            if flags == ['--from=%s' % df['builder']['name']]:
                assert s.rstrip('/') == out.rstrip('/'), value
                shutil.copytree(built, root, dirs_exist_ok=True, symlinks=True)
            else:
                assert not flags, 'teach this test COPY %s' % value
                dest = os.path.join(root, d.lstrip('/'))
                if d.endswith('/'):
                    dest = os.path.join(dest, os.path.basename(s))
                os.makedirs(os.path.dirname(dest), mode=0o755, exist_ok=True)
                shutil.copy(os.path.join(ROOT, s), dest)
        os.makedirs(os.path.join(root, 'tmp'))
        os.chmod(os.path.join(root, 'tmp'), 0o1777)
        subprocess.run(['chmod', '-R', 'go+rX', root], check=True)
        yield root
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_build_lays_out_the_module_and_command_where_the_image_expects(image_root):
    module = os.path.join(image_root, 'usr/lib/apache2/modules/mod_wsgi_rs.so')
    cli = os.path.join(image_root, 'usr/local/bin/mod_wsgi_rs')
    assert os.path.isfile(module) and os.access(cli, os.X_OK)
    # Nothing else: a module next to the command would shadow the installed one.
    assert sorted(os.listdir(os.path.join(image_root, 'usr/local/bin'))) == ['mod_wsgi_rs']


def test_runtime_setup_installs_the_libraries_the_build_links(image_root):
    """Each shared library the module and the command link comes from a
    package runtime-setup.sh installs, or one every Debian image has."""
    with open(os.path.join(DOCKER, 'runtime-setup.sh')) as f:
        m = re.search(r'^PKGS="([^"]*)"', f.read(), re.M)
    assert m
    installed = set(m.group(1).split()) | {'libc6', 'libgcc-s1'}
    for binary in ('usr/lib/apache2/modules/mod_wsgi_rs.so', 'usr/local/bin/mod_wsgi_rs'):
        path = os.path.join(image_root, binary)
        needed = re.findall(r'\(NEEDED\)\s+Shared library: \[([^\]]+)\]',
                            subprocess.run(['readelf', '-d', path], capture_output=True, text=True,
                                           check=True).stdout)
        assert needed, binary
        ldd = subprocess.run(['ldd', path], capture_output=True, text=True, check=True).stdout
        for lib in needed:
            m = re.search(r'^\s*%s => (\S+)' % re.escape(lib), ldd, re.M) or re.search(r'^\s*(\S*%s) ' % re.escape(lib), ldd, re.M)
            assert m, (binary, lib, ldd)
            owner = subprocess.run(['dpkg', '-S', os.path.realpath(m.group(1))], capture_output=True, text=True)
            if owner.returncode != 0:
                owner = subprocess.run(['dpkg', '-S', m.group(1)], capture_output=True, text=True)
            assert owner.returncode == 0, (binary, lib, owner.stderr)
            package = owner.stdout.split(':')[0]
            assert package in installed, '%s links %s, from %s, which runtime-setup.sh does not install' % (
                binary, lib, package)


class Output:
    """A pipe for a child's stdout or stderr, owned by `uid` as runc makes a
    container's (else a non-root Apache cannot open /dev/stdout), read in a
    thread."""

    def __init__(self, uid):
        self.read_fd, self.write_fd = os.pipe()
        if uid != os.geteuid():
            os.fchown(self.write_fd, uid, -1)
        self.chunks = []
        self.thread = threading.Thread(target=self._read, daemon=True)

    def start(self):
        """After the child has its copy of the write end."""
        os.close(self.write_fd)
        self.thread.start()

    def _read(self):
        while True:
            chunk = os.read(self.read_fd, 65536)
            if not chunk:
                break
            self.chunks.append(chunk)
        os.close(self.read_fd)

    @property
    def text(self):
        return b''.join(self.chunks).decode('utf-8', 'replace')

    def wait_for(self, text, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.text:
                return True
            time.sleep(0.05)
        return False


def proc_start_time(pid):
    """(pid, start time) identifies a process across PID reuse; None when gone."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ('Z', 'X') else fields[19]


def descendants(pid):
    children = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open('/proc/%s/stat' % entry) as f:
                    ppid = int(f.read().rsplit(')', 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            found.append(c)
            todo.append(c)
    return found


def get(port, path):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
    try:
        conn.request('GET', path)
        r = conn.getresponse()
        return r.status, r.getheader('Content-Type'), r.read()
    finally:
        conn.close()


def test_image_command_serves_as_non_root_and_stops_on_sigterm(image_root):
    """The image's ENTRYPOINT + CMD, paths into the laid-out image, on a free
    loopback port, as nobody (when run as root; else as this user)."""
    argv = image_argv()
    port = free_port()
    run = []
    for i, a in enumerate(argv):
        prev = argv[i - 1] if i else None
        if prev == '--host':
            a = '127.0.0.1'
        elif prev == '--port':
            a = str(port)
        elif a.startswith('/') and os.path.exists(os.path.join(image_root, a.strip('/').split('/')[0])):
            a = os.path.join(image_root, a.lstrip('/'))
        run.append(a)
    # In the image the command finds the module in Apache's modules directory;
    # here that directory is the host's.
    run += ['--module-path', os.path.join(image_root, 'usr/lib/apache2/modules/mod_wsgi_rs.so')]
    server_root = run[run.index('--server-root') + 1]
    assert server_root.startswith(os.path.join(image_root, 'tmp') + '/'), server_root
    rt = dockerfile()['runtime']
    env = {'PATH': '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME': '/nonexistent'}
    for value in rt.get('ENV', []):
        env.update(w.split('=', 1) for w in shlex.split(value))
    uid = pwd.getpwnam('nobody').pw_uid if os.geteuid() == 0 else os.geteuid()
    if os.geteuid() == 0:
        gid = pwd.getpwnam('nobody').pw_gid
        run = ['setpriv', '--reuid=%d' % uid, '--regid=%d' % gid, '--clear-groups', '--'] + run
    workdir = os.path.join(image_root, rt['WORKDIR'][-1].lstrip('/'))
    stdout, stderr = Output(uid), Output(uid)
    proc = subprocess.Popen(run, stdout=stdout.write_fd, stderr=stderr.write_fd, stdin=subprocess.DEVNULL,
                            cwd=workdir, env=env)
    stdout.start()
    stderr.start()
    started = []
    try:
        deadline = time.time() + 60
        while True:
            assert proc.poll() is None, 'exited %s:\n%s\n%s' % (proc.returncode, stdout.text, stderr.text)
            try:
                socket.create_connection(('127.0.0.1', port), timeout=1).close()
                break
            except OSError:
                assert time.time() < deadline, 'not listening on %d:\n%s\n%s' % (port, stdout.text, stderr.text)
                time.sleep(0.1)
        status, ctype, body = get(port, '/healthz')
        assert (status, body) == (200, b'ok') and ctype.startswith('text/plain'), (status, ctype, body)
        assert get(port, '/hello')[::2] == (200, b'Hello World!')
        status, _, page = get(port, '/')
        assert status == 200 and b'Served by mod_wsgi_rs 0.' in page
        # The access log on stdout, the error log on stderr.
        assert stdout.wait_for('"GET /healthz HTTP/1.1" 200'), stdout.text
        assert stdout.wait_for('"GET /hello HTTP/1.1" 200'), stdout.text
        assert stderr.wait_for('resuming normal operations'), stderr.text
        # Everything it started runs as the non-root user.
        with open(os.path.join(server_root, 'httpd.conf')) as f:
            m = re.search(r'^\s*PidFile\s+"?([^"\s]+)', f.read(), re.M)
        assert m
        pidfile = os.path.join(server_root, m.group(1))
        with open(pidfile) as f:
            httpd = int(f.read().strip())
        tree = descendants(proc.pid)
        assert httpd in tree + [proc.pid], (httpd, tree)
        started = [(p, proc_start_time(p)) for p in [proc.pid] + tree]
        for p, _ in started:
            try:
                with open('/proc/%d/status' % p) as f:
                    uids = re.search(r'^Uid:\s+(.*)$', f.read(), re.M).group(1).split()
            except FileNotFoundError:  # an Apache child that just exited
                continue
            assert set(uids) == {str(uid)}, (p, uids)
        # SIGTERM, as docker stop and Kubernetes send it.
        t0 = time.time()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        took = time.time() - t0
        assert code == 0, (code, stderr.text)
        assert took < 10, took
        assert 'caught SIGTERM' in stderr.text or stderr.wait_for('caught SIGTERM', 2), stderr.text
        deadline = time.time() + 5
        left = [p for p, t in started if t is not None and proc_start_time(p) == t]
        while left and time.time() < deadline:
            time.sleep(0.05)
            left = [p for p, t in started if t is not None and proc_start_time(p) == t]
        assert not left, 'left running after SIGTERM: %s' % left
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p, t in started:
            if t is not None and proc_start_time(p) == t:
                os.kill(p, signal.SIGKILL)
        stdout.thread.join(5)
        stderr.thread.join(5)
