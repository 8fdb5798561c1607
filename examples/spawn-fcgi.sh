#!/bin/sh
# spawn-fcgi binds the socket and passes it to iipsrv on file descriptor 0.
export FILESYSTEM_PREFIX=/srv/images/ CORS='*' VERBOSITY=1 LOGFILE=/tmp/iipsrv.log
exec spawn-fcgi -n -a 127.0.0.1 -p 9000 -- /usr/local/bin/iipsrv
