"""The knowledge base: bibliography, paper cards, taxonomy, site page builders and the command line.

This subpackage reads the ML package (its registry, to join implementations to papers) but the ML
package never imports it, so compression code stays free of site and citation machinery.
"""
