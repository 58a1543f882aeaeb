"""What the benchmarks (and the tests, which import it from here) need to run the product: servers on free
ports, browsers, fake upstreams and voice hubs, the host site the docs describe."""
