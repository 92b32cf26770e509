"""The application, on top of the library: the ``fnn`` command (:mod:`fnn.app.cli`), the HTML
report of experiment runs (:mod:`fnn.app.report`), the claim/check schema the report and the
experiments share (:mod:`fnn.app.claims`), the optimizer-comparison workflow
(:mod:`fnn.app.compare`) and the playground (:mod:`fnn.app.playground`: the notes' TensorFlow
Playground in the browser, trained by fnn). Nothing in the library (``fnn`` outside
``fnn/app``) imports it.

Kept small on purpose: import the submodule you need.
"""
