from setuptools import find_namespace_packages, setup

setup(
    name="lpdeploy",
    version="0.1.0",
    description="A Buildbot plugin for a gated, tested-once release flow with deploy bookkeeping",
    long_description=open("README.rst", encoding="utf-8").read(),
    long_description_content_type="text/x-rst",
    license="AGPL-3.0-or-later",
    python_requires=">=3.11",
    # lpdeploy/web/templates holds data, not code; setuptools sees every directory as a
    # (namespace) package, so it is listed as one and its files declared as its data
    packages=find_namespace_packages(include=["lpdeploy", "lpdeploy.*"]),
    package_data={"lpdeploy.web.templates": ["*.html"]},
    install_requires=[
        "buildbot>=4.3,<4.4",
        "buildbot-worker>=4.3,<4.4",
        "buildbot-www>=4.3,<4.4",
        "Twisted>=24.7",
        "bcrypt>=4.0,<6",
        "croniter>=2.0,<8",  # 2.0: is_valid, aware datetimes; 7.0 tested
        "python-subunit>=1.4,<2",
        "buildbot-wsgi-dashboards>=4.3,<4.4",
        "Flask>=3.0,<4",
    ],
    extras_require={
        "test": [
            "pytest>=8,<10",
            "pytest-timeout>=2.3,<3",
            "pytest-xdist>=3.6,<4",
            "hypothesis>=6.100,<7",
            "websocket-client>=1.8,<2",
            "mutmut>=3.2,<4",
            "ruff>=0.6",
            "mypy>=1.11",
            "selenium>=4.20,<5",
            # tests/test_packaging.py builds the wheel with these (pyproject.toml's build-system)
            "setuptools>=68",
            "wheel",
        ],
        # make cluster and the two-master tests: PostgreSQL's driver and a WAMP router (Crossbar)
        "cluster": [
            "psycopg[binary]>=3.2,<4",
            "crossbar>=26.10,<27",
            # autobahn's bjdata serializer is built against NumPy 1.x: under 2.x its import fails in the router
            "numpy>=1.26,<2",
        ],
    },
    entry_points={
        "console_scripts": ["lpdeploy = lpdeploy.tools.cli:main"],
        "buildbot.changes": ["FlowPoller = lpdeploy.master.changes:FlowPoller"],
        "buildbot.schedulers": [
            "GateScheduler = lpdeploy.master.schedulers:GateScheduler",
            "CronPromotion = lpdeploy.master.schedulers:CronPromotion",
        ],
        "buildbot.steps": [
            "lpdeploy.Decide = lpdeploy.master.steps.flow:Decide",
            "lpdeploy.Checkout = lpdeploy.master.steps.flow:Checkout",
            "lpdeploy.RunSuite = lpdeploy.master.steps.flow:RunSuite",
            "lpdeploy.MoveBranches = lpdeploy.master.steps.flow:MoveBranches",
        ],
        "buildbot.util": [
            "lpdeploy.BcryptHtpasswdAuth = lpdeploy.web.login:BcryptHtpasswdAuth",
            "lpdeploy.configure = lpdeploy.configurator:configure",
        ],
        "buildbot.www": ["lpdeploy = lpdeploy.web.www:ep"],
    },
)
