"""Lạng Sơn Cloud's Pulumi components: one ComponentResource per concern.

Each module keeps its rendering as plain functions returning Kubernetes objects (dicts, the
same camelCase shape ``kubectl`` takes) and a thin ComponentResource that creates them, so the
tests can check and schema-validate exactly what would be applied.

``settings``   the stack's configuration, typed and checked (unknown keys are errors)
``cluster``    OpenStack: network, subnet, router, security groups, keypair, nodes or Magnum
``knative``    Knative Serving/Eventing install and configuration, the broker, the dead-letter channel
``bus``        NATS JetStream cluster (StatefulSet, 3 replicas, PVCs) and its R3 streams
``objectstore`` MinIO (distributed), buckets and per-function credentials and policies
``telemetry``  the OpenTelemetry Collector (config from observability/collector.yaml)
``secrets``    the JWT and partner-bank key secrets, from Pulumi secrets
``appconfig``  the functions' own config maps and secrets (func.yaml references), generated or given
``function``   one function: Knative Service, Triggers, ServiceAccount, NetworkPolicy, PDB
``hooks``      a function's migration and seed Jobs (before and after it serves)
``bridge``     the JetStream -> broker event bridge: Deployment and SinkBinding per broker, policy, PDB
``clock``      the platform clock's CronJob
``tls``        the internal CA (cert-manager) and every server and client certificate
``natsauth``   the NATS users (one per workload, known by its certificate) and their permissions
``releases``   the Knative releases known to be published (only those are installed)
``backup``     mirrors of the buckets and JetStream snapshots to a second S3 target
"""
