"""A small Flask application exercising what real apps use."""
import hashlib

from flask import Flask, Response, abort, jsonify, redirect, request, session, stream_with_context, url_for

app = Flask(__name__)
app.secret_key = 'test-only-secret'


@app.route('/')
def index():
    return jsonify(url=request.url, host=request.host, script_root=request.script_root,
                   items=url_for('item', item_id=7), absolute=url_for('item', item_id=7, _external=True))


@app.route('/items/<int:item_id>')
def item(item_id):
    return jsonify(id=item_id, q=request.args.get('q'), tags=request.args.getlist('tag'))


@app.route('/json', methods=['POST'])
def json_echo():
    data = request.get_json()
    return jsonify(got=data, doubled=[x * 2 for x in data['numbers']])


@app.route('/form', methods=['POST'])
def form():
    return jsonify(name=request.form['name'], colours=request.form.getlist('colour'))


@app.route('/upload', methods=['POST'])
def upload():
    f = request.files['file']
    data = f.read()
    return jsonify(filename=f.filename, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                   note=request.form.get('note'))


@app.route('/session/set/<value>')
def session_set(value):
    session['value'] = value
    return 'stored'


@app.route('/session/get')
def session_get():
    return session.get('value', 'nothing')


@app.route('/go')
def go():
    return redirect(url_for('item', item_id=42))


@app.route('/missing')
def missing():
    abort(404)


@app.errorhandler(404)
def not_found(e):
    return jsonify(error='not found', path=request.path), 404


@app.route('/stream')
def stream():
    n = int(request.args.get('n', 100))

    def generate():
        for i in range(n):
            yield 'line %d %s\n' % (i, request.args.get('tag', ''))
    return Response(stream_with_context(generate()), mimetype='text/plain')
