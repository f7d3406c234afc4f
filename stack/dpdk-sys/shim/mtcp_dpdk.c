/*
 * mtcp-dpdk-sys: out-of-line copies of DPDK's static-inline functions.
 *
 * Each wrapper is one call; the compiler inlines DPDK's body here, so the
 * Rust side pays one extra (non-inlined) call per burst, not per packet,
 * for rx/tx bursts and bulk allocation.
 */
#include "mtcp_dpdk.h"

uint16_t mtcp_rte_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
                               struct rte_mbuf **rx_pkts, uint16_t nb_pkts)
{
	return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts);
}

uint16_t mtcp_rte_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
                               struct rte_mbuf **tx_pkts, uint16_t nb_pkts)
{
	return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts);
}

int mtcp_rte_eth_rx_queue_count(uint16_t port_id, uint16_t queue_id)
{
	return rte_eth_rx_queue_count(port_id, queue_id);
}

struct rte_mbuf *mtcp_rte_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

int mtcp_rte_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
                                unsigned int count)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, count);
}

void mtcp_rte_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

void *mtcp_rte_pktmbuf_mtod(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod(m, void *);
}

char *mtcp_rte_pktmbuf_append(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_append(m, len);
}

uint16_t mtcp_rte_pktmbuf_data_len(const struct rte_mbuf *m)
{
	return rte_pktmbuf_data_len(m);
}

uint32_t mtcp_rte_pktmbuf_pkt_len(const struct rte_mbuf *m)
{
	return rte_pktmbuf_pkt_len(m);
}

uint16_t mtcp_rte_pktmbuf_nb_segs(const struct rte_mbuf *m)
{
	return m->nb_segs;
}

uint64_t mtcp_rte_pktmbuf_ol_flags(const struct rte_mbuf *m)
{
	return m->ol_flags;
}

void mtcp_rte_pktmbuf_set_ol_flags(struct rte_mbuf *m, uint64_t flags)
{
	m->ol_flags = flags;
}

void mtcp_rte_pktmbuf_set_tx_offload(struct rte_mbuf *m, uint64_t flags,
                                     uint16_t l2_len, uint16_t l3_len, uint16_t l4_len)
{
	m->ol_flags |= flags;
	m->l2_len = l2_len;
	m->l3_len = l3_len;
	m->l4_len = l4_len;
}

int mtcp_rte_errno(void)
{
	return rte_errno;
}

uint64_t mtcp_rte_get_tsc_cycles(void)
{
	return rte_get_tsc_cycles();
}

uint64_t mtcp_rte_get_tsc_hz(void)
{
	return rte_get_tsc_hz();
}

unsigned int mtcp_rte_lcore_id(void)
{
	return rte_lcore_id();
}
