//! The catalog of what a CMA task contains: the pre-migration checks of each product (Jira
//! names as seen in Atlassian's documentation, plausible Confluence ones) and the migration scopes with
//! their progress counters, weights and messages.

use crate::cma::wire::Flow;

/// One pre-migration check.
#[derive(Debug)]
pub(crate) struct CheckInfo {
    pub name: &'static str,
    pub description: &'static str,
    /// Message when the check warns.
    pub warning: &'static str,
    /// Message when the check fails.
    pub failure: &'static str,
    /// Whether `excludeKeys` may override a failure of this check.
    pub excludable: bool,
}

const fn check(
    name: &'static str,
    description: &'static str,
    warning: &'static str,
    failure: &'static str,
    excludable: bool,
) -> CheckInfo {
    CheckInfo {
        name,
        description,
        warning,
        failure,
        excludable,
    }
}

pub(crate) const JIRA_CHECKS: &[CheckInfo] = &[
    check(
        "AdvancedRoadmapsOutdated",
        "Checks that Advanced Roadmaps on the server is recent enough to migrate plans.",
        "Advanced Roadmaps is outdated; plans may not migrate completely.",
        "Advanced Roadmaps must be updated before plans can be migrated.",
        true,
    ),
    check(
        "AdvancedRoadmapsProjectMigratedConflict",
        "Checks whether plans reference projects already migrated to the cloud site.",
        "Some plans reference projects that were already migrated.",
        "Plans reference projects that conflict with projects already on the cloud site.",
        true,
    ),
    check(
        "AppAssessmentIncomplete",
        "Checks that every installed app has been assessed in the Migration Assistant.",
        "Some apps have not been assessed yet.",
        "App assessment is incomplete: assess every app before migrating.",
        true,
    ),
    check(
        "AppDataMigrationConsent",
        "Checks that consent has been given for app data migration.",
        "Consent for app data migration is missing for some apps.",
        "Consent to migrate app data has not been given.",
        true,
    ),
    check(
        "AppLicenseCheck",
        "Checks that apps to migrate have a licence on the cloud site.",
        "Some apps do not have a cloud licence yet.",
        "Apps to migrate are not licensed on the cloud site.",
        true,
    ),
    check(
        "AppsNotInstalledOnCloud",
        "Checks that the apps to migrate are installed on the cloud site.",
        "Some apps are not installed on the cloud site.",
        "Apps to migrate are not installed on the cloud site.",
        true,
    ),
    check(
        "AppsReliabilityCheck",
        "Checks the migration reliability of the apps in scope.",
        "Some apps have a low migration success rate.",
        "Apps in scope cannot be migrated reliably.",
        true,
    ),
    check(
        "AppVendorCheck",
        "Checks that app vendors support an automated migration path.",
        "Some app vendors have no automated migration path.",
        "App vendors do not support migrating these apps.",
        true,
    ),
    check(
        "AppWebhookEndpointCheck",
        "Checks that app webhook endpoints are reachable.",
        "Some app webhook endpoints could not be reached.",
        "App webhook endpoints are unreachable.",
        true,
    ),
    check(
        "CloudFreeUserLimit",
        "Checks that the users to migrate fit the cloud site's plan.",
        "The users to migrate are close to the cloud plan's user limit.",
        "The users to migrate exceed the cloud plan's user limit.",
        false,
    ),
    check(
        "CloudSiteNotEmpty",
        "Checks whether the cloud site already contains data.",
        "The cloud site already contains data; items may be merged.",
        "The cloud site already contains conflicting data.",
        true,
    ),
    check(
        "CrossProjectEntityMissingProjectSelection",
        "Checks that boards and filters do not reference projects outside the migration.",
        "Some boards or filters reference projects that are not being migrated.",
        "Boards or filters reference projects that are not selected for migration.",
        false,
    ),
    check(
        "DatabaseSize",
        "Checks the size of the Jira database.",
        "The database is large; the migration may take a long time.",
        "The database is too large to migrate in one job.",
        false,
    ),
    check(
        "EpicLinksAboveStoryHierarchyLevel",
        "Checks for epic links that point above the story level of the issue hierarchy.",
        "Some epic links point above the story hierarchy level.",
        "Epic links point above the story hierarchy level and cannot be migrated.",
        true,
    ),
    check(
        "AnonPermission",
        "Checks for projects whose permissions are granted to anonymous users.",
        "Some projects grant permissions to anonymous users; they will be public on the cloud site.",
        "Projects grant permissions to anonymous users.",
        true,
    ),
    check(
        "MissingAttachments",
        "Checks that the attachment files referenced by issues exist on disk.",
        "Some attachment files are missing on disk and will not be migrated.",
        "Attachment files are missing on disk.",
        true,
    ),
];

pub(crate) const CONFLUENCE_CHECKS: &[CheckInfo] = &[
    check(
        "SpaceKeyConflict",
        "Checks that no space key in scope already exists on the cloud site.",
        "Some space keys already exist on the cloud site.",
        "Space keys in scope already exist on the cloud site.",
        false,
    ),
    check(
        "GroupNameConflict",
        "Checks for groups whose names conflict with groups on the cloud site.",
        "Some groups will be merged with cloud groups of the same name.",
        "Group names conflict with protected groups on the cloud site.",
        true,
    ),
    check(
        "EmailDuplicate",
        "Checks for users who share an email address.",
        "Some users share an email address and will be merged.",
        "Users share email addresses.",
        true,
    ),
    check(
        "InvalidEmail",
        "Checks that every user in scope has a valid email address.",
        "Some users have invalid email addresses.",
        "Users in scope have invalid email addresses.",
        true,
    ),
    check(
        "ConfluenceVersionSupported",
        "Checks that the Confluence version is supported by the Migration Assistant.",
        "This Confluence version is near the end of migration support.",
        "This Confluence version is not supported.",
        false,
    ),
    check(
        "CloudFreeUserLimit",
        "Checks that the users to migrate fit the cloud site's plan.",
        "The users to migrate are close to the cloud plan's user limit.",
        "The users to migrate exceed the cloud plan's user limit.",
        false,
    ),
    check(
        "AppAssessmentIncomplete",
        "Checks that every installed app has been assessed in the Migration Assistant.",
        "Some apps have not been assessed yet.",
        "App assessment is incomplete: assess every app before migrating.",
        true,
    ),
    check(
        "AppDataMigrationConsent",
        "Checks that consent has been given for app data migration.",
        "Consent for app data migration is missing for some apps.",
        "Consent to migrate app data has not been given.",
        true,
    ),
    check(
        "AppsNotInstalledOnCloud",
        "Checks that the apps to migrate are installed on the cloud site.",
        "Some apps are not installed on the cloud site.",
        "Apps to migrate are not installed on the cloud site.",
        true,
    ),
    check(
        "AppVendorCheck",
        "Checks that app vendors support an automated migration path.",
        "Some app vendors have no automated migration path.",
        "App vendors do not support migrating these apps.",
        true,
    ),
    check(
        "MissingAttachments",
        "Checks that the attachment files referenced by pages exist on disk.",
        "Some attachment files are missing on disk and will not be migrated.",
        "Attachment files are missing on disk.",
        true,
    ),
    check(
        "GlobalTemplateConflict",
        "Checks for global page templates whose names exist on the cloud site.",
        "Some global templates will be renamed on the cloud site.",
        "Global templates conflict with templates on the cloud site.",
        true,
    ),
];

/// The checks of a product.
pub(crate) fn checks_for(flow: &Flow) -> &'static [CheckInfo] {
    match flow {
        Flow::Confluence => CONFLUENCE_CHECKS,
        _ => JIRA_CHECKS,
    }
}

/// One migration scope (a child of the `migrate` node).
#[derive(Debug)]
pub(crate) struct ScopeInfo {
    pub name: &'static str,
    /// Share of the core migration time (apps do not share it: they run after the core).
    pub weight: u32,
    /// Progress counters: name and the range of plausible totals.
    pub counters: &'static [(&'static str, u64, u64)],
    pub success: &'static str,
    pub warning: &'static str,
    pub failure: &'static str,
}

const fn scope(
    name: &'static str,
    weight: u32,
    counters: &'static [(&'static str, u64, u64)],
    messages: [&'static str; 3],
) -> ScopeInfo {
    ScopeInfo {
        name,
        weight,
        counters,
        success: messages[0],
        warning: messages[1],
        failure: messages[2],
    }
}

const USERS: ScopeInfo = scope(
    "usersAndGroups",
    1,
    &[("Users", 50, 5_000), ("Groups", 5, 200)],
    [
        "Users and groups migrated.",
        "Users and groups migrated with warnings: some users were merged by email.",
        "Users and groups could not be migrated; see the error log.",
    ],
);
const APPS: ScopeInfo = scope(
    "apps",
    0,
    &[("Apps", 1, 6)],
    [
        "App data migrated.",
        "App data migrated with warnings; see the app migration report.",
        "App data migration failed for at least one app; see the app migration report.",
    ],
);

/// Jira scopes in the order they run; `apps` last, after the core.
pub(crate) const JIRA_SCOPES: &[ScopeInfo] = &[
    USERS,
    scope(
        "projects",
        6,
        &[("Projects", 3, 60), ("Issues", 2_000, 250_000)],
        [
            "Projects migrated.",
            "Projects migrated with warnings: some items could not be migrated; see the migration report.",
            "Project migration failed; see the error log.",
        ],
    ),
    scope(
        "jsm",
        2,
        &[("Service projects", 1, 8), ("Customers", 100, 20_000)],
        [
            "Service management data migrated.",
            "Service management data migrated with warnings; see the migration report.",
            "Service management data could not be migrated; see the error log.",
        ],
    ),
    scope(
        "ar",
        1,
        &[("Plans", 1, 20)],
        [
            "Advanced Roadmaps plans migrated.",
            "Advanced Roadmaps plans migrated with warnings; see the migration report.",
            "Advanced Roadmaps plans could not be migrated; see the error log.",
        ],
    ),
    APPS,
];

/// Confluence scopes in the order they run; `apps` last, after the core.
pub(crate) const CONFLUENCE_SCOPES: &[ScopeInfo] = &[
    USERS,
    scope(
        "spaces",
        6,
        &[("Spaces", 2, 80), ("Pages", 1_000, 80_000)],
        [
            "Spaces migrated.",
            "Spaces migrated with warnings: some attachments could not be migrated; see the migration report.",
            "Space migration failed; see the error log.",
        ],
    ),
    scope(
        "globalEntities",
        1,
        &[("Global page templates", 3, 40)],
        [
            "Global entities migrated.",
            "Global entities migrated with warnings; see the migration report.",
            "Global entities could not be migrated; see the error log.",
        ],
    ),
    APPS,
];

/// The scopes of a product, in running order.
pub(crate) fn scopes_for(flow: &Flow) -> &'static [ScopeInfo] {
    match flow {
        Flow::Confluence => CONFLUENCE_SCOPES,
        _ => JIRA_SCOPES,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_names_are_unique_per_product() {
        for checks in [JIRA_CHECKS, CONFLUENCE_CHECKS] {
            let mut names: Vec<_> = checks.iter().map(|c| c.name).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), checks.len());
        }
    }

    #[test]
    fn apps_run_last_in_both_products() {
        assert_eq!(JIRA_SCOPES.last().map(|s| s.name), Some("apps"));
        assert_eq!(CONFLUENCE_SCOPES.last().map(|s| s.name), Some("apps"));
    }
}
