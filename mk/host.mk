# mk/host.mk: C helpers of the fault specs (spec/host/), built into
# spec/host/build/ (ignored by git) by 'make host', which 'make test' runs.
#   reaper.so    a module that reaps children behind childproc's back
#                (stolen_spec)

HOST_DIR := spec/host/build

.PHONY: host

host: $(HOST_DIR)/reaper.so

$(HOST_DIR)/reaper.so: spec/host/reaper.c mk/host.mk
	@mkdir -p $(HOST_DIR)
	$(CC) -std=c11 -D_GNU_SOURCE -fPIC -O1 -g -Wall -Wextra -Werror $(LUA_CFLAGS) -shared -o $@ $<
