"""`make serve` installs only requirements/site.txt (Jinja2, Pillow, tqdm): rendering the site and
every command's --help must work without NumPy, TensorFlow or Playwright."""
import subprocess
import sys
import textwrap

from conftest import ROOT

# Run in a fresh interpreter where the heavy packages cannot be imported, as in the light install.
BLOCKED = ("numpy", "tensorflow", "tf_keras", "tensorflowjs", "playwright", "matplotlib", "h5py")
PRELUDE = textwrap.dedent(f"""
    import sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in {BLOCKED!r}:
                raise ImportError(f'{{name}} is not in the light install')
    sys.meta_path.insert(0, Block())
    sys.argv = ['build.py'] + sys.argv[1:]
    import runpy
    runpy.run_path('build.py', run_name='__main__')
""")


def light(*args):
    return subprocess.run([sys.executable, "-c", PRELUDE, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_the_site_renders_without_the_heavy_packages(tmp_path):
    done = light("site", "--out", str(tmp_path / "dist"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "dist" / "index.html").is_file()
    assert (tmp_path / "dist" / "vendor" / "tf-runtime.min.js").is_file()


def test_every_command_explains_itself_without_the_heavy_packages():
    for command in ("train", "convert", "evaluate", "compare", "site", "serve", "all"):
        done = light(command, "--help")
        assert done.returncode == 0 and "usage: build.py" in done.stdout, (command, done.stderr)


def test_the_block_is_real():
    """The harness itself: importing NumPy under it fails, so the tests above can fail."""
    done = subprocess.run([sys.executable, "-c", PRELUDE.replace("runpy.run_path('build.py', run_name='__main__')",
                                                                 "import numpy")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "not in the light install" in done.stderr
