/*
 * mtcp-dpdk-sys: the header bindgen reads.
 *
 * It pulls in the DPDK headers the Rust side needs and declares a small
 * shim (mtcp_dpdk.c) for DPDK's static-inline fast-path functions, which
 * have no symbol in the shared libraries and so cannot be bound directly.
 *
 * Constants that DPDK defines with function-like macros (RTE_BIT64(n)) are
 * invisible to bindgen; they are re-exported below as `static const`
 * variables, which bindgen evaluates into Rust `const`s.
 */
#ifndef MTCP_DPDK_H
#define MTCP_DPDK_H

#include <stdint.h>

#include <rte_config.h>
#include <rte_common.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_cycles.h>
#include <rte_memory.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ether.h>
#include <rte_ethdev.h>
#include <rte_version.h>

/* ---- fast-path wrappers (mtcp_dpdk.c) -------------------------------- */

uint16_t mtcp_rte_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
                               struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
uint16_t mtcp_rte_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
                               struct rte_mbuf **tx_pkts, uint16_t nb_pkts);
int mtcp_rte_eth_rx_queue_count(uint16_t port_id, uint16_t queue_id);

struct rte_mbuf *mtcp_rte_pktmbuf_alloc(struct rte_mempool *mp);
int mtcp_rte_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
                                 unsigned int count);
void mtcp_rte_pktmbuf_free(struct rte_mbuf *m);
void *mtcp_rte_pktmbuf_mtod(struct rte_mbuf *m);
char *mtcp_rte_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
uint16_t mtcp_rte_pktmbuf_data_len(const struct rte_mbuf *m);
uint32_t mtcp_rte_pktmbuf_pkt_len(const struct rte_mbuf *m);
uint16_t mtcp_rte_pktmbuf_nb_segs(const struct rte_mbuf *m);
uint64_t mtcp_rte_pktmbuf_ol_flags(const struct rte_mbuf *m);
void mtcp_rte_pktmbuf_set_ol_flags(struct rte_mbuf *m, uint64_t flags);
void mtcp_rte_pktmbuf_set_tx_offload(struct rte_mbuf *m, uint64_t flags,
                                     uint16_t l2_len, uint16_t l3_len, uint16_t l4_len);

int mtcp_rte_errno(void);
uint64_t mtcp_rte_get_tsc_cycles(void);
uint64_t mtcp_rte_get_tsc_hz(void);
unsigned int mtcp_rte_lcore_id(void);

/* ---- RTE_BIT64 constants, evaluated by bindgen ----------------------- */

static const uint64_t MTCP_RTE_ETH_RSS_IPV4 = RTE_ETH_RSS_IPV4;
static const uint64_t MTCP_RTE_ETH_RSS_NONFRAG_IPV4_TCP = RTE_ETH_RSS_NONFRAG_IPV4_TCP;
static const uint64_t MTCP_RTE_ETH_RSS_NONFRAG_IPV4_UDP = RTE_ETH_RSS_NONFRAG_IPV4_UDP;
static const uint64_t MTCP_RTE_ETH_RX_OFFLOAD_IPV4_CKSUM = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
static const uint64_t MTCP_RTE_ETH_RX_OFFLOAD_TCP_CKSUM = RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
static const uint64_t MTCP_RTE_ETH_TX_OFFLOAD_IPV4_CKSUM = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
static const uint64_t MTCP_RTE_ETH_TX_OFFLOAD_TCP_CKSUM = RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
static const uint64_t MTCP_RTE_ETH_TX_OFFLOAD_TCP_TSO = RTE_ETH_TX_OFFLOAD_TCP_TSO;
static const uint64_t MTCP_RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE = RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
static const uint32_t MTCP_RTE_ETH_LINK_SPEED_AUTONEG = RTE_ETH_LINK_SPEED_AUTONEG;

static const uint64_t MTCP_RTE_MBUF_F_RX_IP_CKSUM_MASK = RTE_MBUF_F_RX_IP_CKSUM_MASK;
static const uint64_t MTCP_RTE_MBUF_F_RX_IP_CKSUM_BAD = RTE_MBUF_F_RX_IP_CKSUM_BAD;
static const uint64_t MTCP_RTE_MBUF_F_RX_IP_CKSUM_GOOD = RTE_MBUF_F_RX_IP_CKSUM_GOOD;
static const uint64_t MTCP_RTE_MBUF_F_RX_L4_CKSUM_MASK = RTE_MBUF_F_RX_L4_CKSUM_MASK;
static const uint64_t MTCP_RTE_MBUF_F_RX_L4_CKSUM_BAD = RTE_MBUF_F_RX_L4_CKSUM_BAD;
static const uint64_t MTCP_RTE_MBUF_F_RX_L4_CKSUM_GOOD = RTE_MBUF_F_RX_L4_CKSUM_GOOD;
static const uint64_t MTCP_RTE_MBUF_F_TX_IPV4 = RTE_MBUF_F_TX_IPV4;
static const uint64_t MTCP_RTE_MBUF_F_TX_IP_CKSUM = RTE_MBUF_F_TX_IP_CKSUM;
static const uint64_t MTCP_RTE_MBUF_F_TX_TCP_CKSUM = RTE_MBUF_F_TX_TCP_CKSUM;

static const unsigned int MTCP_RTE_MBUF_DEFAULT_BUF_SIZE = RTE_MBUF_DEFAULT_BUF_SIZE;
static const unsigned int MTCP_RTE_PKTMBUF_HEADROOM = RTE_PKTMBUF_HEADROOM;
static const unsigned int MTCP_RTE_MAX_ETHPORTS = RTE_MAX_ETHPORTS;
static const unsigned int MTCP_RTE_ETH_RETA_GROUP_SIZE = RTE_ETH_RETA_GROUP_SIZE;
static const unsigned int MTCP_LCORE_ID_ANY = LCORE_ID_ANY;
static const int MTCP_SOCKET_ID_ANY = SOCKET_ID_ANY;

#endif
