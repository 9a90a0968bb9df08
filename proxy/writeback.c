/*
 * proxy/writeback.c — --write-policy back: WRITEs made durable locally and
 * flushed upstream in the background.  (Being built: until it is, the
 * option is refused at start-up rather than silently ignored.)
 */
#include "config.h"
#include "proxy/core.h"

int px_wb_open(struct px_loop *l)
{
	if (l->lp_opts->o_write_policy != PX_WRITE_BACK)
		return 0;
	px_err("--write-policy back is not available in this build yet");
	return -ENOSYS;
}

void px_wb_close(struct px_loop *l)
{
	(void)l;
}

void px_wb_tick(struct px_loop *l)
{
	(void)l;
}

int px_wb_call(struct px_loop *l, struct px_client *c, uint8_t *msg,
	       size_t len, const struct rpc_call *h)
{
	return 0;
}

void px_wb_reply(struct px_loop *l, struct px_call *pc, struct px_msg *m,
		 size_t res_off)
{
}
