//! The SELECT of a segment written straight from the planner's parts
//! ([`SqlSelect`]), without a `LogicalPlan`: the same statement the
//! unparser makes of the plan (a test requires the same text), at a
//! fraction of the cost, for the segments the planner gives parts for.
//! Expressions still go through the unparser, so every dialect spells
//! them as it does in the plan's SQL. The statement is built as sqlparser's
//! syntax tree directly: the unparser's builders clone every subtree they
//! build, which was half of the time left.

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, Result as DfResult};
use datafusion::logical_expr::Expr;
use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{self, Ident, OrderByKind, SetExpr};
use datafusion::sql::unparser::dialect::Dialect as _;
use datafusion::sql::unparser::Unparser;

use super::Target;
use crate::plan::{col, column_of, SqlLookup, SqlSelect, SqlUniverse};

/// Writes [`SqlSelect`]s for one target.
pub(super) struct Writer<'a> {
    pub(super) target: &'a Target,
    pub(super) unparser: Unparser<'a>,
}

/// The clauses of one SELECT that Seg writes.
#[derive(Default)]
struct Clauses {
    distinct: bool,
    projection: Vec<ast::SelectItem>,
    from: Option<ast::TableWithJoins>,
    selection: Option<ast::Expr>,
    group_by: Vec<ast::Expr>,
}

impl Writer<'_> {
    /// The statement of a segment, as `Unparser::plan_to_sql` writes its
    /// plan.
    pub(super) fn statement(&self, select: SqlSelect) -> DfResult<ast::Statement> {
        let SqlSelect {
            lookups,
            filter,
            aggregates,
            predicate,
            universe,
        } = select;
        let counts = self.derived(self.counts(lookups, filter, aggregates)?, "counts");
        let (from, id) = match &universe {
            SqlUniverse::Joined { until_as_of } => {
                let on = binary(
                    self.column("universe", "profile_id")?,
                    ast::BinaryOperator::Eq,
                    self.column("counts", "profile_id")?,
                );
                let universe = self.universe(until_as_of.clone())?;
                let from = ast::TableWithJoins {
                    relation: self.derived(universe, "universe"),
                    joins: vec![left_join(counts, on)],
                };
                (from, "universe")
            }
            SqlUniverse::Exists | SqlUniverse::Counted => (alone(counts), "counts"),
        };
        let mut selection = self.unparser.expr_to_sql(&predicate)?;
        if let SqlUniverse::Exists = universe {
            selection = binary(
                selection,
                ast::BinaryOperator::And,
                self.exists_in_profiles()?,
            );
        }
        let outer = Clauses {
            projection: vec![ast::SelectItem::ExprWithAlias {
                expr: self.column(id, "profile_id")?,
                alias: self.ident("profile_id"),
            }],
            from: Some(from),
            selection: Some(selection),
            ..Clauses::default()
        };
        let order = self
            .unparser
            .sort_to_sql(&col("profile_id").sort(true, false))?;
        Ok(ast::Statement::Query(Box::new(query(
            outer,
            Some(OrderByKind::Expressions(vec![order])),
        ))))
    }

    /// `SELECT <aggregates>, events.profile_id FROM events LEFT JOIN
    /// <lookups> WHERE <filter> GROUP BY events.profile_id`.
    fn counts(
        &self,
        lookups: Vec<SqlLookup>,
        filter: Expr,
        aggregates: Vec<Expr>,
    ) -> DfResult<ast::Query> {
        let mut joins = Vec::with_capacity(lookups.len());
        for lookup in lookups {
            let on = binary(
                self.column("events", lookup.joined_on)?,
                ast::BinaryOperator::Eq,
                self.column(&lookup.alias, "id")?,
            );
            let alias = lookup.alias.clone();
            joins.push(left_join(self.derived(self.lookup(lookup)?, &alias), on));
        }
        let id = self.column("events", "profile_id")?;
        let mut projection = aggregates
            .into_iter()
            .map(|a| self.item(a, "events"))
            .collect::<DfResult<Vec<_>>>()?;
        projection.push(ast::SelectItem::UnnamedExpr(id.clone()));
        Ok(query(
            Clauses {
                projection,
                from: Some(ast::TableWithJoins {
                    relation: self.table("events"),
                    joins,
                }),
                selection: Some(self.expr(filter, "events")?),
                group_by: vec![id],
                ..Clauses::default()
            },
            None,
        ))
    }

    /// `SELECT DISTINCT <table>.<id> AS id FROM <table> WHERE <filter>`.
    fn lookup(&self, lookup: SqlLookup) -> DfResult<ast::Query> {
        Ok(query(
            Clauses {
                distinct: true,
                projection: vec![ast::SelectItem::ExprWithAlias {
                    expr: self.column(lookup.table, lookup.id)?,
                    alias: self.ident("id"),
                }],
                from: Some(alone(self.table(lookup.table))),
                selection: Some(self.expr(lookup.filter, lookup.table)?),
                ..Clauses::default()
            },
            None,
        ))
    }

    /// The ids of the universe: the profiles table's, or with `until_as_of`
    /// those of the events up to as_of.
    fn universe(&self, until_as_of: Option<Expr>) -> DfResult<ast::Query> {
        let table = if until_as_of.is_some() {
            "events"
        } else {
            "profiles"
        };
        let id = self.column(table, "profile_id")?;
        let mut selection = ast::Expr::IsNotNull(Box::new(id.clone()));
        if let Some(until_as_of) = until_as_of {
            let until_as_of = self.expr(until_as_of, table)?;
            selection = binary(selection, ast::BinaryOperator::And, until_as_of);
        }
        Ok(query(
            Clauses {
                projection: vec![ast::SelectItem::UnnamedExpr(id.clone())],
                from: Some(alone(self.table(table))),
                selection: Some(selection),
                group_by: vec![id],
                ..Clauses::default()
            },
            None,
        ))
    }

    /// `EXISTS (SELECT 1 FROM (SELECT profiles.profile_id FROM profiles) AS
    /// universe WHERE counts.profile_id = universe.profile_id)`.
    fn exists_in_profiles(&self) -> DfResult<ast::Expr> {
        let profiles = query(
            Clauses {
                projection: vec![ast::SelectItem::UnnamedExpr(
                    self.column("profiles", "profile_id")?,
                )],
                from: Some(alone(self.table("profiles"))),
                ..Clauses::default()
            },
            None,
        );
        let same = Expr::Column(column_of("counts", "profile_id"))
            .eq(Expr::Column(column_of("universe", "profile_id")));
        let exists = Clauses {
            projection: vec![ast::SelectItem::UnnamedExpr(ast::Expr::value(
                ast::Value::Number("1".to_string(), false),
            ))],
            from: Some(alone(self.derived(profiles, "universe"))),
            selection: Some(self.unparser.expr_to_sql(&same)?),
            ..Clauses::default()
        };
        Ok(ast::Expr::Exists {
            subquery: Box::new(query(exists, None)),
            negated: false,
        })
    }

    /// An expression whose columns without a table are `table`'s.
    fn expr(&self, e: Expr, table: &str) -> DfResult<ast::Expr> {
        self.unparser.expr_to_sql(&qualified(e, table)?)
    }

    /// A SELECT item, `AS` its alias if it has one.
    fn item(&self, e: Expr, table: &str) -> DfResult<ast::SelectItem> {
        Ok(match e {
            Expr::Alias(alias) => ast::SelectItem::ExprWithAlias {
                expr: self.expr(*alias.expr, table)?,
                alias: self.ident(&alias.name),
            },
            e => ast::SelectItem::UnnamedExpr(self.expr(e, table)?),
        })
    }

    fn column(&self, table: &str, name: &str) -> DfResult<ast::Expr> {
        self.unparser.col_to_sql(&column_of(table, name))
    }

    fn ident(&self, name: &str) -> Ident {
        let mut ident = Ident::new(name);
        ident.quote_style = self.target.identifier_quote_style(name);
        ident
    }

    fn table(&self, name: &str) -> ast::TableFactor {
        ast::TableFactor::Table {
            name: ast::ObjectName::from(vec![self.ident(name)]),
            alias: None,
            args: None,
            with_hints: vec![],
            version: None,
            partitions: vec![],
            with_ordinality: false,
            json_path: None,
            sample: None,
            index_hints: vec![],
        }
    }

    fn derived(&self, subquery: ast::Query, alias: &str) -> ast::TableFactor {
        ast::TableFactor::Derived {
            lateral: false,
            subquery: Box::new(subquery),
            alias: Some(ast::TableAlias {
                name: self.ident(alias),
                columns: vec![],
                explicit: true,
                at: None,
            }),
            sample: None,
        }
    }
}

/// `e` with `table` on every column that has none.
fn qualified(e: Expr, table: &str) -> DfResult<Expr> {
    e.transform_up(|e| {
        Ok(match e {
            Expr::Column(Column {
                relation: None,
                name,
                ..
            }) => Transformed::yes(Expr::Column(column_of(table, name))),
            e => Transformed::no(e),
        })
    })
    .map(|t| t.data)
}

/// A query of one SELECT, as the unparser's `QueryBuilder` and
/// `SelectBuilder` build it.
fn query(clauses: Clauses, order_by: Option<OrderByKind>) -> ast::Query {
    let select = ast::Select {
        optimizer_hints: vec![],
        distinct: clauses.distinct.then_some(ast::Distinct::Distinct),
        select_modifiers: None,
        top_before_distinct: false,
        top: None,
        projection: clauses.projection,
        into: None,
        from: clauses.from.into_iter().collect(),
        lateral_views: vec![],
        selection: clauses.selection,
        group_by: ast::GroupByExpr::Expressions(clauses.group_by, vec![]),
        cluster_by: vec![],
        distribute_by: vec![],
        sort_by: vec![],
        having: None,
        named_window: vec![],
        qualify: None,
        value_table_mode: None,
        connect_by: Vec::new(),
        window_before_qualify: false,
        prewhere: None,
        select_token: AttachedToken::empty(),
        flavor: ast::SelectFlavor::Standard,
        exclude: None,
    };
    ast::Query {
        with: None,
        body: Box::new(SetExpr::Select(Box::new(select))),
        order_by: order_by.map(|kind| ast::OrderBy {
            kind,
            interpolate: None,
        }),
        limit_clause: Some(ast::LimitClause::LimitOffset {
            limit: None,
            offset: None,
            limit_by: vec![],
        }),
        fetch: None,
        locks: vec![],
        for_clause: None,
        settings: None,
        format_clause: None,
        pipe_operators: vec![],
    }
}

/// A relation joined to nothing.
fn alone(relation: ast::TableFactor) -> ast::TableWithJoins {
    ast::TableWithJoins {
        relation,
        joins: vec![],
    }
}

fn left_join(relation: ast::TableFactor, on: ast::Expr) -> ast::Join {
    ast::Join {
        relation,
        global: false,
        join_operator: ast::JoinOperator::LeftOuter(ast::JoinConstraint::On(on)),
    }
}

fn binary(left: ast::Expr, op: ast::BinaryOperator, right: ast::Expr) -> ast::Expr {
    ast::Expr::BinaryOp {
        left: Box::new(left),
        op,
        right: Box::new(right),
    }
}
