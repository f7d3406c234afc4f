//! The network interface layer: Ethernet in and out, ARP, IPv4 and ICMP echo.
