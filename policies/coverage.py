"""Resource types the pack deliberately does not check, each with the reason a reviewer accepted.

tests/test_policy_coverage.py fails when a resource type of any planned stack (dev, staging, prod and the
synthetic benchmark stacks) is named by no rule and missing here, and when an entry here is stale (no plan
has the type) or a rule checks it after all. Prefix subjects (``aws:*``) do not count as checking a type.
"""

from __future__ import annotations

from collections.abc import Mapping

# "Gap:" marks a type with security- or cost-relevant settings that still needs a rule (issue 20 follow-up);
# the others have nothing a rule could usefully constrain, or are constrained through the resource they serve.
UNCHECKED_TYPES: Mapping[str, str] = {
    "aws:appautoscaling/policy:Policy": "Target-tracking scaling of a SageMaker variant; the bounds that cost "
    "money live on its Target.",
    "aws:appautoscaling/target:Target": "Gap: min/max capacity of SageMaker endpoints is not yet bounded by a rule "
    "(the stack file validation bounds it today).",
    "aws:cloudwatch/eventRule:EventRule": "Routes AWS events (Spot interruptions) to the interruption queue; no "
    "setting grants access or costs money.",
    "aws:cloudwatch/eventTarget:EventTarget": "Delivery target of an event rule; the queue it delivers to is "
    "checked (MLS-SQS-001/002).",
    "aws:codeconnections/connection:Connection": "A GitHub App connection someone authorises in the console; it "
    "has no setting to constrain, and the roles that may use it are checked (MLS-IAM-001..009).",
    "aws:ec2/eip:Eip": "Elastic IPs of the NAT gateways; their count is checked through the NAT gateways "
    "(MLS-NET-005) and priced by mlstack cost.",
    "aws:ec2/internetGateway:InternetGateway": "The VPC's one internet gateway for NAT egress; what reaches the "
    "internet is decided by subnets, security groups and load balancers (MLS-NET-003/004, MLS-K8S-017).",
    "aws:ec2/route:Route": "Routes to the NAT and internet gateways; public exposure is checked on subnets and "
    "security groups.",
    "aws:ec2/routeTable:RouteTable": "Container of routes; see aws:ec2/route:Route.",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "Links a subnet to its route table; no setting of its "
    "own.",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "Gap: endpoint policies and private DNS are not yet checked.",
    "aws:eks/accessEntry:AccessEntry": "Who may authenticate; what they may do is on the policy association "
    "(see there), and access entries themselves are required by MLS-EKS-004.",
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": "Gap: cluster-admin associations are not yet "
    "limited to the platform admin role (CIS EKS 4.1.1).",
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": "Binds a service account to a role; the role's "
    "trust and policies are checked (MLS-IAM-001..009).",
    "aws:iam/instanceProfile:InstanceProfile": "Wraps the node role for Karpenter; the role is checked.",
    "aws:s3/bucketReplicationConfig:BucketReplicationConfig": "Gap: replica encryption and destination account are "
    "not yet checked by a rule (storage component tests cover the shipped configuration).",
    "aws:sagemaker/endpoint:Endpoint": "Points at an endpoint configuration, which carries every setting "
    "(MLS-SM-002).",
    "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy": "mlstack's own guardrails (team pods "
    "may not tolerate the system nodes' taint, components/compute.py; team Sensors may not run as root, "
    "components/events.py); their CEL rules are exercised by tests/test_compute.py and tests/test_sensor_policy.py, "
    "and a policy over a policy would only restate them.",
    "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding": "Binds those policies to the "
    "team namespaces (Deny; the root-Sensor one Warn and Audit under its named opt-out); see the policies.",
    "kubernetes:core/v1:ConfigMap": "Non-secret settings and scripts mounted into pods (the Metaflow services' "
    "database service file); the pods that mount them are checked.",
    "kubernetes:core/v1:LimitRange": "Default requests for pods that set none; quotas are checked "
    "(MLS-K8S-020/023).",
    "kubernetes:core/v1:Secret": "Secrets are encrypted by the cluster key (MLS-EKS-001); their data is never in "
    "the plan.",
    "kubernetes:core/v1:ServiceAccount": "Identity only; its AWS role is bound by Pod Identity and checked there.",
    "kubernetes:http.keda.sh/v1alpha1:HTTPScaledObject": "Gap: replica bounds of HTTP-scaled endpoints are not "
    "yet checked against the GPU pools.",
    "kubernetes:keda.sh/v1alpha1:ScaledObject": "Gap: replica bounds of KEDA-scaled endpoints are not yet checked "
    "against the GPU pools.",
    "kubernetes:kueue.x-k8s.io/v1beta2:ClusterQueue": "Gap: nominal and borrowing quotas are bounded through the "
    "namespace ResourceQuota (MLS-K8S-020/023), not yet on the queue itself.",
    "kubernetes:kueue.x-k8s.io/v1beta2:LocalQueue": "Points a namespace at its ClusterQueue; no setting of its "
    "own.",
    "kubernetes:kueue.x-k8s.io/v1beta2:ResourceFlavor": "Names node labels of a GPU pool; the pool is checked.",
    "kubernetes:policy/v1:PodDisruptionBudget": "Availability during node drains; no security or cost setting.",
    "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding": "Gap: bindings to cluster-admin or to groups outside "
    "the team are not yet checked (the bound Role is, MLS-K8S-024).",
    "aws:sns/topicPolicy:TopicPolicy": "Gap: anonymous publishers are not yet refused by a rule (the Alerts "
    "component allows only budgets.amazonaws.com of this account; tests/test_observability.py checks it).",
    "aws:sns/topicSubscription:TopicSubscription": "An email address subscribed to the alert topic; the topic is "
    "checked (MLS-SNS-001).",
    "kubernetes:monitoring.coreos.com/v1:PodMonitor": "Tells Prometheus what to scrape; grants nothing. That each "
    "selects a target Prometheus can reach is simulated (MLS-SIM-MON-001/002/003).",
    "kubernetes:monitoring.coreos.com/v1:PrometheusRule": "Alert rules; that each parses and names scraped metrics "
    "is simulated (MLS-SIM-MON-002).",
    "kubernetes:monitoring.coreos.com/v1:ServiceMonitor": "Tells Prometheus what to scrape; grants nothing. That "
    "each selects a target Prometheus can reach is simulated (MLS-SIM-MON-001/002/003).",
    "pulumi:providers:kubernetes": "Connection settings only; the AWS provider carries the account and region "
    "pins (MLS-ENV-001..003).",
    "random:index/randomPassword:RandomPassword": "Generated locally, never a cloud resource; its length and "
    "character set are fixed in the component.",
    "tls:index/privateKey:PrivateKey": "Generated locally by the tls provider (ECDSA P-256, fixed in "
    "components/vectordb.py), kept only in the stack's state as a secret output; never a cloud resource.",
    "tls:index/selfSignedCert:SelfSignedCert": "Qdrant's CA certificate, made locally; its key usage and lifetime "
    "are fixed in components/vectordb.py and tested.",
    "tls:index/certRequest:CertRequest": "A local signing request; it carries only the names Qdrant's "
    "certificate covers (components/vectordb.py qdrant_dns_names).",
    "tls:index/locallySignedCert:LocallySignedCert": "Qdrant's server certificate, signed locally by its CA; "
    "lifetime and renewal window fixed in components/vectordb.py and tested.",
    "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition": "External Secrets Operator's CRDs, unedited "
    "from upstream (components/data/crds, vendored by scripts/vendor_eso_crds.py); a schema, no setting of "
    "ours. The objects they define are schema-checked by the simulation (MLS-SIM-SCHEMA-001).",
    "kubernetes:external-secrets.io/v1:SecretStore": "Gap: no rule checks its provider yet. Only the "
    "ExternalSecrets component creates them, one per SSO app namespace, with the operator's own Pod Identity "
    "role, which may read only the SSO secrets (tests/test_secrets.py, MLS-SIM-IAM-001/002).",
    "kubernetes:external-secrets.io/v1:ExternalSecret": "Copies one SSO client secret into its app's Secret "
    "(encrypted by the cluster key, MLS-EKS-001); what it can read is bounded by the operator's role "
    "(MLS-SIM-IAM-001/002).",
}
