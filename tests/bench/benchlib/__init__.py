"""Workloads and report of the rftpd / vsftpd / pure-ftpd benchmark (tests/bench/).

Standard library only. Every module talks to servers on 127.0.0.1 and nothing else; every
loop in it is bounded in count or time. Nothing here starts or configures a server: run.sh
does that and passes the servers in setup.json.
"""
