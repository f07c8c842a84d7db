//! `dirsync watch`: keeps DST a replica of SRC in real time with inotify.
